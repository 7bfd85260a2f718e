//! The `guildhall` command: serve, migrate, schema.
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::serve::ListenerExt;
use clap::Parser;
use guildhall::config::{AuditAction, Cli, Command, MigrateAction};
use guildhall::store::Store;
use guildhall::telemetry::{Exporting, Tracing};
use migration::{Migrator, MigratorTrait};
use tracing_subscriber::EnvFilter;

/// A response is built from many small allocations across worker threads; mimalloc's
/// thread-local free lists serve them far faster than the system allocator and return freed
/// memory to the system instead of keeping per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sets up the log (standard output, `text` or `json`) and, when `exporting` is given, traces
/// over OTLP. Call before the async runtime starts: the trace exporter's HTTP client is blocking.
fn init_logging(format: &str, exporting: Option<&Exporting>) -> Result<Option<Tracing>, String> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = || {
        EnvFilter::try_from_env("GUILDHALL_LOG")
            .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"))
            // Spans made for traces only never reach the log.
            .add_directive(
                format!("{}=off", guildhall::telemetry::TARGET)
                    .parse()
                    .expect("a valid directive"),
            )
    };
    let (tracing, traces) = match exporting {
        Some(exporting) => {
            let (tracing, layer) = Tracing::start(exporting)?;
            // Spans only: log events carry details (database errors, say) that stay in the log.
            let only_ours = tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && meta.target().starts_with("guildhall") && *meta.level() <= tracing::Level::INFO
            });
            (Some(tracing), Some(layer.with_filter(only_ours)))
        }
        None => (None, None),
    };
    // Colour codes only for a terminal: a log written to a file or a pipe stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let json = format == "json";
    tracing_subscriber::registry()
        .with(traces)
        .with(json.then(|| tracing_subscriber::fmt::layer().json().with_filter(filter())))
        .with((!json).then(|| tracing_subscriber::fmt::layer().with_ansi(ansi).with_filter(filter())))
        .init();
    Ok(tracing)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// mimalloc's `mi_option_purge_delay`, by its place in the option enum of the pinned version.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // SAFETY: option setters are not thread safe; no other thread exists yet. Freed pages go
    // back to the system after 10 ms instead of a second, which keeps the resident set close to
    // what is in use; purging at once cost more CPU (page faults, TLB shoot-downs) than it saved.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
    // SQLite allocates with the C allocator from each of its connection threads; glibc would
    // give every thread an arena of its own and keep their free space. Two arenas suffice.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called before any other thread exists; mallopt only changes allocator settings.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = Cli::parse();
    let started = match &cli.command {
        Command::Serve(args) => {
            let exporting = args.otlp_endpoint.as_ref().map(|endpoint| Exporting {
                endpoint: endpoint.clone(),
                protocol: args.otlp_protocol.clone(),
                service_name: args.otlp_service_name.clone(),
                honour_traceparent: args.otlp_honour_traceparent,
            });
            init_logging(&args.log_format, exporting.as_ref())
        }
        Command::Schema => Ok(None),
        _ => init_logging("text", None),
    };
    let tracing = match started {
        Ok(tracing) => tracing,
        Err(err) => {
            eprintln!("cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            ExitCode::FAILURE
        }
    };
    if let Some(tracing) = tracing {
        tracing.shutdown();
    }
    code
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Schema => {
            print!("{}", guildhall::graphql::sdl());
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            let server = match guildhall::server::build(&args).await {
                Ok(server) => server,
                Err(err) => {
                    tracing::error!("cannot start: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let listener = match tokio::net::TcpListener::bind(args.bind).await {
                // Responses go out as soon as they are written: without TCP_NODELAY the tail of
                // a large response waits for the client's delayed acknowledgement (~40 ms).
                Ok(listener) => listener.tap_io(|tcp| {
                    if let Err(err) = tcp.set_nodelay(true) {
                        tracing::debug!("cannot set TCP_NODELAY: {err}");
                    }
                }),
                Err(err) => {
                    tracing::error!("cannot listen on {}: {err}", args.bind);
                    return ExitCode::FAILURE;
                }
            };
            tracing::info!("Guildhall listening on http://{} (GraphiQL at /graphiql)", args.bind);
            let metrics = match args.metrics_bind.trim() {
                "off" | "" => None,
                address => {
                    let bound = match address.parse::<SocketAddr>() {
                        Ok(address) => tokio::net::TcpListener::bind(address).await.map_err(|e| e.to_string()),
                        Err(_) => Err("not an address (use host:port, or off)".to_owned()),
                    };
                    match bound {
                        Ok(listener) => {
                            tracing::info!("metrics at http://{address}/metrics");
                            Some(tokio::spawn(
                                axum::serve(listener, server.metrics_router.clone()).into_future(),
                            ))
                        }
                        Err(err) => {
                            tracing::error!("cannot serve metrics on {address}: {err}");
                            return ExitCode::FAILURE;
                        }
                    }
                }
            };
            let service = server.router.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(err) = axum::serve(listener, service)
                .with_graceful_shutdown(shutdown_signal())
                .await
            {
                tracing::error!("server error: {err}");
                return ExitCode::FAILURE;
            }
            if let Some(metrics) = metrics {
                metrics.abort();
            }
            server.app.store.clone().close().await;
            ExitCode::SUCCESS
        }
        Command::Audit {
            action: AuditAction::Export { since },
            database,
        } => {
            let store = match Store::connect(&database.database_url, 1).await {
                Ok(store) => store,
                Err(err) => {
                    eprintln!("cannot open the database: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let result = export_audit(&store, since).await;
            store.close().await;
            match result {
                Ok(count) => {
                    eprintln!("exported {count} events");
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("export failed: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo { database } => {
            let args = guildhall::config::ServeArgs::defaults_for(&database.database_url);
            let server = match guildhall::server::build(&args).await {
                Ok(server) => server,
                Err(err) => {
                    eprintln!("cannot open the database: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match guildhall::demo::seed(&server.app).await {
                Ok(seeded) => {
                    println!("Seeded the organization `{}` (Acme Robotics).", guildhall::demo::SLUG);
                    println!("Start the server (`guildhall serve`), open /graphiql and sign in as anyone below with");
                    println!(
                        "  mutation {{ logIn(input: {{ email: \"<email>\", password: \"{}\" }}) {{ accessToken }} }}",
                        guildhall::demo::PASSWORD
                    );
                    println!("then put {{\"Authorization\": \"Bearer <accessToken>\"}} in the Headers tab.\n");
                    for (name, email, held) in &seeded.people {
                        println!("  {email:<22} {name:<18} {held}");
                    }
                    println!("\nInvited, not yet a member: {}", seeded.invited);
                    println!(
                        "Service account `CI deployer` (release_manager in infra), its token:\n  {}",
                        seeded.service_account_token
                    );
                    server.app.store.clone().close().await;
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("cannot seed the demo: {err} (it is seeded once per database)");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Backup { path, database } => {
            let store = match Store::connect(&database.database_url, 1).await {
                Ok(store) => store,
                Err(err) => {
                    eprintln!("cannot open the database: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let result = store.backup_into(&path).await;
            store.close().await;
            match result {
                Ok(bytes) => {
                    println!("backed up to {} ({bytes} bytes)", path.display());
                    ExitCode::SUCCESS
                }
                Err(err) => {
                    eprintln!("backup failed: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate { action, database } => {
            let store = match Store::connect(&database.database_url, database.database_max_connections).await {
                Ok(store) => store,
                Err(err) => {
                    eprintln!("cannot open the database: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let result = match action {
                MigrateAction::Up => Migrator::up(&store.conn, None).await,
                MigrateAction::Down => Migrator::down(&store.conn, Some(1)).await,
                // Printed, not logged: the log filter keeps the migrator's own lines out.
                MigrateAction::Status => Migrator::get_migration_with_status(&store.conn)
                    .await
                    .map(|migrations| {
                        for migration in migrations {
                            let status = match migration.status() {
                                migration::MigrationStatus::Applied => "applied",
                                _ => "pending",
                            };
                            println!("{status:<8} {}", migration.name());
                        }
                    }),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("migration failed: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Writes audit events from `since` on to standard output as JSON lines, a page at a time.
async fn export_audit(store: &Store, since: chrono::DateTime<chrono::Utc>) -> Result<u64, String> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = None;
    let mut count = 0u64;
    loop {
        let page = guildhall::domain::audit::export_page(&store.conn, since, after, 1_000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some((last.occurred_at, last.id));
        for event in &page {
            writeln!(out, "{}", guildhall::domain::audit::export_line(event)).map_err(|e| e.to_string())?;
            count += 1;
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(count)
}
