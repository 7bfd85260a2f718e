//! Guildhall: organizations, members, roles, keychains, workspaces, invitations, API tokens and
//! an audit log, served over GraphQL.
//!
//! Layers import in one direction: `http` → `graphql` → `domain` → (`authz`, `store`).
pub mod authz;
pub mod config;
pub mod demo;
pub mod domain;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod server;
pub mod store;
pub mod telemetry;
