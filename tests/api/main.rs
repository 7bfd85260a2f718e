//! End-to-end tests over real HTTP against the real server.
mod conformance;
mod helpers;

mod integrations;
mod live;

mod accounts;
mod cli;
mod conventions;
mod mail;
mod membership;
mod metrics;
mod organizations;
mod performance;
mod permissions;
mod probe;
mod processes;
mod retention;
mod rule;
mod schema;
mod security;
mod transport;
