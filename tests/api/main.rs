//! End-to-end tests over real HTTP against the real server.
mod conformance;
mod helpers;

mod integrations;
mod live;

mod accounts;
mod cli;
mod cluster;
mod contacts;
mod conventions;
mod expiry;
mod identity;
mod mail;
mod membership;
mod metrics;
mod organizations;
mod owner_safety;
mod performance;
mod permissions;
mod pooler;
mod preview;
mod probe;
mod processes;
mod retention;
mod rule;
mod schema;
mod security;
mod self_service;
mod teams;
mod traces;
mod transport;
mod two_factor;
mod verification;
mod who_can;
