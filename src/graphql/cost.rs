//! What an operation may cost, and what it did cost.
//!
//! The model (GitHub's node limit and Shopify's query cost are the examples): every field costs
//! 1 plus its selection; a connection multiplies its selection by the page size asked for
//! (`first`, 20 when not given, at most 100); a list that is not paged multiplies by what it
//! holds in practice ([`LIST`] for an organization's definitions or a user's tokens,
//! [`SHORT_LIST`] for a member's bindings or a role's keychains); fields computed per row from an organization's definitions
//! cost [`COMPUTED`]. Aliases add up like any other field. An operation above the limit is
//! refused before anything runs, the operations of one batch share one budget, and every
//! response says what its operation cost in `extensions.cost` (`requested`, `limit`).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest, NextValidation};
use async_graphql::{Response, ServerError, ValidationResult, Value};

/// Page size a connection is costed at when `first` is not given.
pub const DEFAULT_PAGE: usize = 20;
/// Largest page a connection returns.
pub const MAX_PAGE: usize = 100;
/// What a long unpaged list is costed at: an organization's roles or keychains, a user's tokens.
pub const LIST: usize = 20;
/// What a short per-row list is costed at: a member's bindings, a role's keychains.
pub const SHORT_LIST: usize = 3;
/// Fields computed per row from definitions (key lists, holder counts).
pub const COMPUTED: usize = 5;

/// The cost of a connection field: its selection once per row it may return.
pub fn connection(first: Option<i32>, child_complexity: usize) -> usize {
    let rows = first.map_or(DEFAULT_PAGE, |n| n.clamp(0, MAX_PAGE as i32) as usize);
    1 + rows.max(1) * child_complexity
}

/// The cost of a long unpaged list of objects.
pub fn list(child_complexity: usize) -> usize {
    1 + LIST * child_complexity
}

/// The cost of a short per-row list of objects.
pub fn short_list(child_complexity: usize) -> usize {
    1 + SHORT_LIST * child_complexity
}

/// What the operations of one HTTP request may cost together.
pub struct BatchBudget {
    remaining: AtomicUsize,
}

impl BatchBudget {
    pub fn new(limit: usize) -> BatchBudget {
        BatchBudget {
            remaining: AtomicUsize::new(limit),
        }
    }

    /// Takes `cost` from the budget; false (and nothing taken) when it does not fit.
    fn take(&self, cost: usize) -> bool {
        self.remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(cost))
            .is_ok()
    }
}

/// Installs the cost limit on a schema.
pub struct CostLimit {
    pub limit: usize,
}

impl ExtensionFactory for CostLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostMeter {
            limit: self.limit,
            requested: Mutex::new(None),
        })
    }
}

/// One operation's meter.
struct CostMeter {
    limit: usize,
    requested: Mutex<Option<usize>>,
}

impl CostMeter {
    fn refuse(&self, message: String, requested: usize) -> Vec<ServerError> {
        let mut error = ServerError::new(message, None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", "BAD_USER_INPUT");
        extensions.set("cost", self.cost_value(requested));
        error.extensions = Some(extensions);
        vec![error]
    }

    fn cost_value(&self, requested: usize) -> Value {
        let mut map = async_graphql::indexmap::IndexMap::new();
        map.insert(async_graphql::Name::new("requested"), Value::from(requested as u64));
        map.insert(async_graphql::Name::new("limit"), Value::from(self.limit as u64));
        Value::Object(map)
    }
}

#[async_trait::async_trait]
impl Extension for CostMeter {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        let requested = *self.requested.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(requested) = requested {
            response
                .extensions
                .insert("cost".to_owned(), self.cost_value(requested));
        }
        response
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let requested = result.complexity;
        *self.requested.lock().unwrap_or_else(|p| p.into_inner()) = Some(requested);
        if requested > self.limit {
            return Err(self.refuse(
                format!(
                    "this operation costs {requested}, more than the limit of {}: ask for smaller pages or fewer fields",
                    self.limit
                ),
                requested,
            ));
        }
        if let Some(budget) = ctx.data_opt::<Arc<BatchBudget>>()
            && !budget.take(requested)
        {
            return Err(self.refuse(
                format!(
                    "the operations of this batch together cost more than the limit of {}",
                    self.limit
                ),
                requested,
            ));
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_multiply_by_the_page_asked_for_within_bounds() {
        assert_eq!(connection(None, 3), 1 + 20 * 3);
        assert_eq!(connection(Some(100), 3), 301);
        assert_eq!(connection(Some(3_000_000), 3), 301, "capped at the largest page");
        assert_eq!(
            connection(Some(-5), 3),
            4,
            "an empty page still costs its selection once"
        );
    }

    #[test]
    fn a_batch_budget_is_shared_and_never_overdrawn() {
        let budget = BatchBudget::new(100);
        assert!(budget.take(60));
        assert!(!budget.take(41));
        assert!(budget.take(40));
        assert!(!budget.take(1));
    }
}
