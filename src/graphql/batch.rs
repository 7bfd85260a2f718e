//! Request-scoped batch loading, driven by the execution itself.
//!
//! A field that needs rows asks a [`BatchLoader`] for them and waits; the loader only queues the
//! key. [`Driven`] polls the request's execution and, each time the execution has nothing left to
//! do but wait, starts one load per loader for all the keys queued so far. Sibling fields of a
//! list therefore share one statement without any timer: a batch is exactly the set of keys asked
//! for before the execution stalled (the same in debug and release builds), and no request
//! waits for a batching window to close.
//!
//! Loaded values are remembered for the rest of the request while the database is unchanged
//! (the store's write clock has not moved since the batch was opened), so a row asked for in two
//! places of one response is read once, and a field resolved after a mutation reads afresh.
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use async_graphql::dataloader::Loader;
use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::store::{Shared as SharedValues, WriteClock};

/// The error of a loader, which must also be able to say that its batch never ran.
pub trait LoadError: Clone + Send + Sync + 'static {
    /// The batch was dropped before its load finished (its request went away).
    fn dropped() -> Self;
}

impl LoadError for Arc<sea_orm::DbErr> {
    fn dropped() -> Self {
        Arc::new(sea_orm::DbErr::Custom("a batched load was abandoned".to_owned()))
    }
}

impl LoadError for Arc<crate::domain::DomainError> {
    fn dropped() -> Self {
        Arc::new(crate::domain::DomainError::Internal(
            "a batched load was abandoned".to_owned(),
        ))
    }
}

/// A loader's type name without its module path (`MemberPagesLoader`).
fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

type Outcome<K, V, E> = Result<Arc<HashMap<K, V>>, E>;
type BatchResult<K, V, E> = Shared<BoxFuture<'static, Outcome<K, V, E>>>;
/// A batch by its number within its loader, with its result.
type Numbered<K, V, E> = (u64, BatchResult<K, V, E>);

/// A loader with keys waiting to be loaded.
trait Dispatch: Send + Sync {
    /// Takes the waiting keys and returns the load of them (`None` when none are waiting).
    fn dispatch(self: Arc<Self>) -> Option<BoxFuture<'static, ()>>;
}

/// The loaders of one request that have keys waiting, in the order they first queued one.
#[derive(Default)]
pub struct Batcher {
    queue: Mutex<Vec<Arc<dyn Dispatch>>>,
    /// Set once a [`Driven`] execution flushes the queue.
    driven: AtomicBool,
}

impl Batcher {
    pub fn new() -> Arc<Batcher> {
        Arc::new(Batcher::default())
    }

    fn enqueue(&self, loader: Arc<dyn Dispatch>) {
        if self.driven.load(Ordering::Acquire) {
            self.queue.lock().unwrap_or_else(PoisonError::into_inner).push(loader);
            return;
        }
        // Nothing flushes this queue (an execution outside `drive`): load on a task of its own,
        // once the current task has yielded, so keys asked for in the same turn still share it.
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            if let Some(load) = loader.dispatch() {
                load.await;
            }
        });
    }

    fn take(&self) -> Vec<Arc<dyn Dispatch>> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Loads values of type `L::Value` by key, a batch at a time, for one request.
pub struct BatchLoader<K, L: Loader<K>>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
{
    inner: Arc<Inner<K, L>>,
}

struct Inner<K, L: Loader<K>>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
{
    loader: L,
    batcher: Arc<Batcher>,
    clock: Arc<WriteClock>,
    shared: Option<Arc<SharedValues<K, L::Value>>>,
    state: Mutex<State<K, L::Value, L::Error>>,
}

struct State<K, V, E> {
    next_batch: u64,
    /// Every key asked for in this request, with the batch that loads (or loaded) it.
    entries: HashMap<K, Entry<K, V, E>>,
    /// The batch still gathering keys, if any.
    open: Option<OpenBatch<K, V, E>>,
}

struct Entry<K, V, E> {
    batch: u64,
    /// The write clock's generation when the batch was opened (before it read anything).
    generation: Option<u64>,
    result: BatchResult<K, V, E>,
}

struct OpenBatch<K, V, E> {
    id: u64,
    generation: Option<u64>,
    keys: Vec<K>,
    sender: oneshot::Sender<Outcome<K, V, E>>,
    result: BatchResult<K, V, E>,
}

impl<K, L> BatchLoader<K, L>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    L: Loader<K>,
    L::Error: LoadError,
{
    pub fn new(loader: L, batcher: &Arc<Batcher>, clock: &Arc<WriteClock>) -> Self {
        Self::build(loader, batcher, clock, None)
    }

    /// A loader that also uses, and fills, values shared between requests.
    pub fn sharing(
        loader: L,
        batcher: &Arc<Batcher>,
        clock: &Arc<WriteClock>,
        shared: &Arc<SharedValues<K, L::Value>>,
    ) -> Self {
        Self::build(loader, batcher, clock, Some(shared.clone()))
    }

    fn build(
        loader: L,
        batcher: &Arc<Batcher>,
        clock: &Arc<WriteClock>,
        shared: Option<Arc<SharedValues<K, L::Value>>>,
    ) -> Self {
        BatchLoader {
            inner: Arc::new(Inner {
                loader,
                batcher: batcher.clone(),
                clock: clock.clone(),
                shared,
                state: Mutex::new(State {
                    next_batch: 0,
                    entries: HashMap::new(),
                    open: None,
                }),
            }),
        }
    }

    /// The value of one key (`None` when the loader found nothing for it).
    pub async fn load_one(&self, key: K) -> Result<Option<L::Value>, L::Error> {
        if let Some(shared) = &self.inner.shared
            && let Some(value) = shared.get(&key)
        {
            return Ok(Some(value));
        }
        let mut batches = self.batches_of(std::slice::from_ref(&key));
        let Some((_, batch)) = batches.pop() else {
            return Ok(None);
        };
        Ok(batch.await?.get(&key).cloned())
    }

    /// The values of many keys; keys the loader found nothing for are left out.
    pub async fn load_many(&self, keys: &[K]) -> Result<HashMap<K, L::Value>, L::Error> {
        let mut out = match &self.inner.shared {
            Some(shared) => shared.get_many(keys.iter()),
            None => HashMap::with_capacity(keys.len()),
        };
        if out.len() == keys.len() {
            return Ok(out);
        }
        let missing: Vec<K> = keys.iter().filter(|k| !out.contains_key(*k)).cloned().collect();
        for (_, batch) in self.batches_of(&missing) {
            let values = batch.await?;
            for key in &missing {
                if let Some(value) = values.get(key) {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(out)
    }

    /// The batches holding `keys`, each once; keys not yet asked for (or whose value may be
    /// stale) join the open batch, which is queued for loading when it opens.
    fn batches_of(&self, keys: &[K]) -> Vec<Numbered<K, L::Value, L::Error>> {
        let generation = self.inner.clock.generation();
        let mut out: Vec<Numbered<K, L::Value, L::Error>> = Vec::with_capacity(1);
        let mut opened = false;
        {
            let mut state = self.inner.state.lock().unwrap_or_else(PoisonError::into_inner);
            let state = &mut *state;
            for key in keys {
                let open_id = state.open.as_ref().map(|b| b.id);
                if let Some(entry) = state.entries.get(key) {
                    // Still gathering keys (so it reads after now), or read while nothing changed.
                    let current =
                        Some(entry.batch) == open_id || (entry.generation.is_some() && entry.generation == generation);
                    if current {
                        if !out.iter().any(|(id, _)| *id == entry.batch) {
                            out.push((entry.batch, entry.result.clone()));
                        }
                        continue;
                    }
                }
                let batch = state.open.get_or_insert_with(|| {
                    opened = true;
                    let (sender, receiver) = oneshot::channel();
                    let result = receiver
                        .map(|sent| sent.unwrap_or_else(|_| Err(L::Error::dropped())))
                        .boxed()
                        .shared();
                    state.next_batch += 1;
                    OpenBatch {
                        id: state.next_batch,
                        generation,
                        keys: Vec::new(),
                        sender,
                        result,
                    }
                });
                batch.keys.push(key.clone());
                state.entries.insert(
                    key.clone(),
                    Entry {
                        batch: batch.id,
                        generation: batch.generation,
                        result: batch.result.clone(),
                    },
                );
                if !out.iter().any(|(id, _)| *id == batch.id) {
                    out.push((batch.id, batch.result.clone()));
                }
            }
        }
        if opened {
            self.inner.batcher.enqueue(self.inner.clone());
        }
        out
    }
}

impl<K, L> Dispatch for Inner<K, L>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    L: Loader<K>,
    L::Error: LoadError,
{
    fn dispatch(self: Arc<Self>) -> Option<BoxFuture<'static, ()>> {
        let batch = self.state.lock().unwrap_or_else(PoisonError::into_inner).open.take()?;
        // A batch's statements, as one span of the request's trace (traces only).
        let span = tracing::info_span!(
            target: crate::telemetry::TARGET,
            "load",
            otel.name = %format_args!("load {}", short_type_name::<L>()),
            keys = batch.keys.len(),
        );
        Some(
            async move {
                let outcome = self.loader.load(&batch.keys).await.map(Arc::new);
                if let (Some(shared), Ok(values)) = (&self.shared, &outcome) {
                    shared.put_many(batch.generation, values);
                }
                // Nobody waiting any more is fine: the request went away.
                let _ = batch.sender.send(outcome);
            }
            .instrument(span)
            .boxed(),
        )
    }
}

/// An execution whose loaders' batches are started whenever it stalls. See the module notes.
pub struct Driven<F: Future> {
    execution: Pin<Box<F>>,
    batcher: Arc<Batcher>,
    loads: FuturesUnordered<BoxFuture<'static, ()>>,
    signal: Arc<WakeSignal>,
    waker: Waker,
}

/// Runs `execution`, flushing `batcher` each time the execution waits with nothing else to do.
pub fn drive<F: Future>(batcher: Arc<Batcher>, execution: F) -> Driven<F> {
    batcher.driven.store(true, Ordering::Release);
    let signal = Arc::new(WakeSignal::default());
    Driven {
        execution: Box::pin(execution),
        batcher,
        loads: FuturesUnordered::new(),
        waker: Waker::from(signal.clone()),
        signal,
    }
}

/// The waker the execution sees: it notes that it was woken, then wakes the request's task.
#[derive(Default)]
struct WakeSignal {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl WakeSignal {
    fn wake_task(&self) {
        // Only the first wake since the last poll needs to reach the task.
        if !self.woken.swap(true, Ordering::AcqRel)
            && let Some(task) = &*self.task.lock().unwrap_or_else(PoisonError::into_inner)
        {
            task.wake_by_ref();
        }
    }
}

impl Wake for WakeSignal {
    fn wake(self: Arc<Self>) {
        self.wake_task();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_task();
    }
}

impl<F: Future> Future for Driven<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        {
            let mut task = this.signal.task.lock().unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let mut own = Context::from_waker(&this.waker);
        loop {
            // Cleared before anything is polled: any wake from here on is seen below, and the
            // first of them has woken the task, which is polled again after this returns.
            this.signal.woken.store(false, Ordering::Release);
            // Loads in flight make progress; a finished one wakes the fields waiting on it.
            while let Poll::Ready(Some(())) = this.loads.poll_next_unpin(&mut own) {}
            if let Poll::Ready(output) = this.execution.as_mut().poll(&mut own) {
                return Poll::Ready(output);
            }
            // Woken while being polled (a list yielding, a load finishing): more fields can
            // still run and ask for keys, so the batches stay open until it truly waits.
            // (The task was woken too, so it is polled again.)
            if this.signal.woken.load(Ordering::Acquire) {
                return Poll::Pending;
            }
            let queued = this.batcher.take();
            if queued.is_empty() {
                return Poll::Pending;
            }
            this.loads
                .extend(queued.into_iter().filter_map(|loader| loader.dispatch()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Squares its keys and records the size of every batch it was asked for.
    #[derive(Clone, Default)]
    struct Squares {
        batches: Arc<Mutex<Vec<usize>>>,
    }

    impl Loader<u64> for Squares {
        type Value = u64;
        type Error = Arc<sea_orm::DbErr>;

        async fn load(&self, keys: &[u64]) -> Result<HashMap<u64, u64>, Self::Error> {
            self.batches.lock().expect("batches").push(keys.len());
            // A real load waits on the database; so does this one, once.
            tokio::task::yield_now().await;
            Ok(keys.iter().filter(|k| **k != 0).map(|k| (*k, k * k)).collect())
        }
    }

    fn setup() -> (Squares, Arc<Batcher>, Arc<WriteClock>, BatchLoader<u64, Squares>) {
        let squares = Squares::default();
        let batcher = Batcher::new();
        let clock = Arc::new(WriteClock::new());
        let loader = BatchLoader::new(squares.clone(), &batcher, &clock);
        (squares, batcher, clock, loader)
    }

    #[tokio::test]
    async fn keys_asked_for_before_the_execution_waits_share_one_batch() {
        let (squares, batcher, _, loader) = setup();
        let loader = &loader;
        let values = drive(
            batcher,
            futures_util::future::join_all((1..=50u64).map(|k| async move { loader.load_one(k).await })),
        )
        .await;
        assert_eq!(values[6].as_ref().expect("loaded"), &Some(49));
        assert_eq!(values.len(), 50);
        assert_eq!(*squares.batches.lock().expect("batches"), vec![50]);
    }

    #[tokio::test]
    async fn each_level_of_a_response_is_one_batch_and_missing_keys_are_none() {
        let (squares, batcher, _, loader) = setup();
        let loader = &loader;
        let steps = AtomicUsize::new(0);
        let steps = &steps;
        let values = drive(
            batcher,
            futures_util::future::join_all((0..10u64).map(|k| async move {
                let first = loader.load_one(k).await.expect("loaded");
                steps.fetch_add(1, Ordering::Relaxed);
                let second = loader.load_one(k + 100).await.expect("loaded");
                (first, second)
            })),
        )
        .await;
        assert_eq!(values[0], (None, Some(10_000)));
        assert_eq!(values[3], (Some(9), Some(103 * 103)));
        assert_eq!(steps.load(Ordering::Relaxed), 10);
        assert_eq!(*squares.batches.lock().expect("batches"), vec![10, 10]);
    }

    #[tokio::test]
    async fn values_are_remembered_until_the_database_changes() {
        let (squares, batcher, clock, loader) = setup();
        let loader = &loader;
        drive(batcher, async move {
            assert_eq!(loader.load_many(&[2, 3]).await.expect("loaded").len(), 2);
            // Read again while nothing changed: no load.
            assert_eq!(loader.load_one(3).await.expect("loaded"), Some(9));
            clock.tick();
            // After a write the value is read again, with any new key in the same batch.
            let again = loader.load_many(&[3, 4]).await.expect("loaded");
            assert_eq!(again.get(&4), Some(&16));
        })
        .await;
        assert_eq!(*squares.batches.lock().expect("batches"), vec![2, 2]);
    }

    #[tokio::test]
    async fn requests_share_rows_until_the_database_changes_and_within_capacity() {
        let squares = Squares::default();
        let clock = Arc::new(WriteClock::new());
        let shared = Arc::new(SharedValues::new(&clock, 3));
        let request = |keys: Vec<u64>| {
            let batcher = Batcher::new();
            let loader = BatchLoader::sharing(squares.clone(), &batcher, &clock, &shared);
            drive(batcher, async move { loader.load_many(&keys).await.expect("loaded") })
        };
        assert_eq!(request(vec![1, 2]).await.len(), 2);
        // Another request: both from the shared rows, one key read.
        assert_eq!(request(vec![1, 2, 3]).await.get(&3), Some(&9));
        assert_eq!(*squares.batches.lock().expect("batches"), vec![2, 1]);
        // The store keeps at most three values: a fourth starts it over.
        request(vec![4]).await;
        assert_eq!(request(vec![4]).await.get(&4), Some(&16));
        assert_eq!(*squares.batches.lock().expect("batches"), vec![2, 1, 1]);
        request(vec![1]).await;
        assert_eq!(*squares.batches.lock().expect("batches"), vec![2, 1, 1, 1]);
        // After a write nothing stored before is used.
        clock.tick();
        request(vec![1]).await;
        assert_eq!(*squares.batches.lock().expect("batches"), vec![2, 1, 1, 1, 1]);
        // The database's change clock seen to move (another process wrote) drops them too; seen
        // again unchanged, it does not.
        clock.observe(40);
        request(vec![1]).await;
        clock.observe(40);
        request(vec![1]).await;
        clock.observe(39);
        request(vec![1]).await;
        assert_eq!(*squares.batches.lock().expect("batches"), vec![2, 1, 1, 1, 1, 1]);
    }

    #[tokio::test]
    async fn loads_outside_a_driven_execution_still_complete() {
        let (squares, _, _, loader) = setup();
        let (a, b) = tokio::join!(loader.load_one(5), loader.load_one(6));
        assert_eq!((a.expect("a"), b.expect("b")), (Some(25), Some(36)));
        assert_eq!(squares.batches.lock().expect("batches").iter().sum::<usize>(), 2);
    }
}
