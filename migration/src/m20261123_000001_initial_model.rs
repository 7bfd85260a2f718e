//! The whole domain model of DESIGN.md §1: later migrations extend these tables, never replace them.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(
    from: &'static str,
    col: &'static str,
    to: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from, col)
        .to(to, "id")
        .on_delete(on_delete)
        .to_owned()
}

fn at(col: &'static str) -> ColumnDef {
    timestamp_with_time_zone(col)
}

fn at_null(col: &'static str) -> ColumnDef {
    timestamp_with_time_zone_null(col)
}

fn index(table: &'static str, name: &'static str, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(*col);
    }
    if unique {
        stmt.unique();
    }
    stmt.to_owned()
}

/// Tables in creation order (dropped in reverse).
const TABLES: &[&str] = &[
    "settings",
    "organizations",
    "users",
    "sessions",
    "refresh_tokens",
    "login_failures",
    "memberships",
    "workspaces",
    "keychains",
    "keychain_keys",
    "roles",
    "role_keys",
    "role_keychains",
    "role_bindings",
    "invitations",
    "invitation_role_bindings",
    "api_tokens",
    "audit_events",
    "mail_outbox",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ForeignKeyAction::{Cascade, Restrict, SetNull};
        let tables = vec![
            // Server-wide settings such as the generated JWT secret.
            Table::create()
                .table("settings")
                .col(string("key").primary_key())
                .col(text("value"))
                .col(at("created_at"))
                .to_owned(),
            Table::create()
                .table("organizations")
                .col(pk_uuid("id"))
                .col(string_uniq("slug"))
                .col(string("name"))
                .col(string("plan"))
                .col(at("created_at"))
                .col(at("updated_at"))
                .to_owned(),
            // SERVICE users have no email and no password and belong to one organization.
            Table::create()
                .table("users")
                .col(pk_uuid("id"))
                .col(string("kind"))
                .col(string_null("email"))
                .col(string_null("email_canonical").unique_key())
                .col(string("name"))
                .col(string_null("password_hash"))
                .col(big_integer("token_version").default(0))
                .col(uuid_null("service_organization_id"))
                .col(at("created_at"))
                .col(at("updated_at"))
                .foreign_key(&mut fk("users", "service_organization_id", "organizations", Cascade))
                .to_owned(),
            // One row per signed-in session: a refresh token family.
            Table::create()
                .table("sessions")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(at("created_at"))
                .col(at("refreshed_at"))
                .col(at("expires_at"))
                .col(at_null("revoked_at"))
                .col(string_null("revoked_reason"))
                .col(string_null("client_address"))
                .col(string_null("user_agent"))
                .foreign_key(&mut fk("sessions", "user_id", "users", Cascade))
                .to_owned(),
            Table::create()
                .table("refresh_tokens")
                .col(pk_uuid("id"))
                .col(uuid("session_id"))
                .col(string_uniq("token_hash"))
                .col(at("created_at"))
                .col(at("expires_at"))
                .col(at_null("rotated_at"))
                .foreign_key(&mut fk("refresh_tokens", "session_id", "sessions", Cascade))
                .to_owned(),
            // Failed sign-ins, counted per email and per client address for rate limiting.
            Table::create()
                .table("login_failures")
                .col(pk_uuid("id"))
                .col(string("scope"))
                .col(string("subject"))
                .col(at("occurred_at"))
                .to_owned(),
            Table::create()
                .table("memberships")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(uuid("user_id"))
                .col(at("created_at"))
                .foreign_key(&mut fk("memberships", "organization_id", "organizations", Cascade))
                .foreign_key(&mut fk("memberships", "user_id", "users", Cascade))
                .to_owned(),
            Table::create()
                .table("workspaces")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(string("slug"))
                .col(string("name"))
                .col(text("description").default(""))
                .col(at("created_at"))
                .col(at("updated_at"))
                .foreign_key(&mut fk("workspaces", "organization_id", "organizations", Cascade))
                .to_owned(),
            // organization_id NULL marks a BUILT_IN keychain, synchronised from the catalog.
            Table::create()
                .table("keychains")
                .col(pk_uuid("id"))
                .col(uuid_null("organization_id"))
                .col(string("kind"))
                .col(string("name"))
                .col(text("description").default(""))
                .col(at("created_at"))
                .col(at("updated_at"))
                .foreign_key(&mut fk("keychains", "organization_id", "organizations", Cascade))
                .to_owned(),
            Table::create()
                .table("keychain_keys")
                .col(uuid("keychain_id"))
                .col(string("key"))
                .primary_key(Index::create().col("keychain_id").col("key"))
                .foreign_key(&mut fk("keychain_keys", "keychain_id", "keychains", Cascade))
                .to_owned(),
            // organization_id NULL marks a BUILT_IN role, synchronised from the catalog.
            Table::create()
                .table("roles")
                .col(pk_uuid("id"))
                .col(uuid_null("organization_id"))
                .col(string("kind"))
                .col(string("name"))
                .col(text("description").default(""))
                .col(string("scope"))
                .col(integer("min_holders").default(0))
                .col(integer_null("max_holders"))
                .col(string("granted_by"))
                .col(integer("position").default(0))
                .col(at("created_at"))
                .col(at("updated_at"))
                .foreign_key(&mut fk("roles", "organization_id", "organizations", Cascade))
                .to_owned(),
            Table::create()
                .table("role_keys")
                .col(uuid("role_id"))
                .col(string("key"))
                .primary_key(Index::create().col("role_id").col("key"))
                .foreign_key(&mut fk("role_keys", "role_id", "roles", Cascade))
                .to_owned(),
            Table::create()
                .table("role_keychains")
                .col(uuid("role_id"))
                .col(uuid("keychain_id"))
                .primary_key(Index::create().col("role_id").col("keychain_id"))
                .foreign_key(&mut fk("role_keychains", "role_id", "roles", Cascade))
                .foreign_key(&mut fk("role_keychains", "keychain_id", "keychains", Restrict))
                .to_owned(),
            // scope_key is "org" or the workspace id, so uniqueness holds without NULL semantics.
            Table::create()
                .table("role_bindings")
                .col(pk_uuid("id"))
                .col(uuid("membership_id"))
                .col(uuid("role_id"))
                .col(uuid_null("workspace_id"))
                .col(string("scope_key"))
                .col(uuid_null("granted_by_user_id"))
                .col(at("granted_at"))
                .foreign_key(&mut fk("role_bindings", "membership_id", "memberships", Cascade))
                .foreign_key(&mut fk("role_bindings", "role_id", "roles", Restrict))
                .foreign_key(&mut fk("role_bindings", "workspace_id", "workspaces", Cascade))
                .foreign_key(&mut fk("role_bindings", "granted_by_user_id", "users", SetNull))
                .to_owned(),
            Table::create()
                .table("invitations")
                .col(pk_uuid("id"))
                .col(uuid("organization_id"))
                .col(string("email"))
                .col(string("email_canonical"))
                .col(string_uniq("token_hash"))
                .col(string("status"))
                .col(at("expires_at"))
                .col(uuid_null("invited_by_user_id"))
                .col(at("created_at"))
                .col(at_null("responded_at"))
                .col(uuid_null("membership_id"))
                .foreign_key(&mut fk("invitations", "organization_id", "organizations", Cascade))
                .foreign_key(&mut fk("invitations", "invited_by_user_id", "users", SetNull))
                .foreign_key(&mut fk("invitations", "membership_id", "memberships", SetNull))
                .to_owned(),
            Table::create()
                .table("invitation_role_bindings")
                .col(pk_uuid("id"))
                .col(uuid("invitation_id"))
                .col(uuid("role_id"))
                .col(uuid_null("workspace_id"))
                .foreign_key(&mut fk(
                    "invitation_role_bindings",
                    "invitation_id",
                    "invitations",
                    Cascade,
                ))
                .foreign_key(&mut fk("invitation_role_bindings", "role_id", "roles", Cascade))
                .foreign_key(&mut fk(
                    "invitation_role_bindings",
                    "workspace_id",
                    "workspaces",
                    Cascade,
                ))
                .to_owned(),
            Table::create()
                .table("api_tokens")
                .col(pk_uuid("id"))
                .col(uuid("user_id"))
                .col(uuid_null("organization_id"))
                .col(uuid_null("keychain_id"))
                .col(string("name"))
                .col(string("prefix"))
                .col(string_uniq("token_hash"))
                .col(at_null("expires_at"))
                .col(at_null("last_used_at"))
                .col(at("created_at"))
                .col(at_null("revoked_at"))
                .foreign_key(&mut fk("api_tokens", "user_id", "users", Cascade))
                .foreign_key(&mut fk("api_tokens", "organization_id", "organizations", Cascade))
                .foreign_key(&mut fk("api_tokens", "keychain_id", "keychains", Cascade))
                .to_owned(),
            // Append-only; no foreign keys so that events outlive what they describe.
            Table::create()
                .table("audit_events")
                .col(pk_uuid("id"))
                .col(uuid_null("organization_id"))
                .col(uuid_null("actor_user_id"))
                .col(uuid_null("actor_token_id"))
                .col(string("action"))
                .col(string_null("target_type"))
                .col(uuid_null("target_id"))
                .col(text("details"))
                .col(string_null("client_address"))
                .col(string_null("user_agent"))
                .col(string_null("request_id"))
                .col(at("occurred_at"))
                .to_owned(),
            Table::create()
                .table("mail_outbox")
                .col(pk_uuid("id"))
                .col(string("recipient"))
                .col(string("subject"))
                .col(text("body"))
                .col(string("kind"))
                .col(uuid_null("invitation_id"))
                .col(integer("attempts").default(0))
                .col(at("next_attempt_at"))
                .col(at_null("sent_at"))
                .col(text_null("last_error"))
                .col(at("created_at"))
                .to_owned(),
        ];
        for table in tables {
            manager.create_table(table).await?;
        }
        let indexes = [
            index("sessions", "idx_sessions_user", &["user_id"], false),
            index("refresh_tokens", "idx_refresh_tokens_session", &["session_id"], false),
            index(
                "login_failures",
                "idx_login_failures_subject",
                &["scope", "subject", "occurred_at"],
                false,
            ),
            index(
                "memberships",
                "uq_memberships_org_user",
                &["organization_id", "user_id"],
                true,
            ),
            index("memberships", "idx_memberships_user", &["user_id", "id"], false),
            index("memberships", "idx_memberships_org", &["organization_id", "id"], false),
            index(
                "workspaces",
                "uq_workspaces_org_slug",
                &["organization_id", "slug"],
                true,
            ),
            index("keychains", "uq_keychains_org_name", &["organization_id", "name"], true),
            index("roles", "uq_roles_org_name", &["organization_id", "name"], true),
            index("role_keychains", "idx_role_keychains_keychain", &["keychain_id"], false),
            index(
                "role_bindings",
                "uq_role_bindings_scope",
                &["membership_id", "role_id", "scope_key"],
                true,
            ),
            index("role_bindings", "idx_role_bindings_role", &["role_id"], false),
            index("role_bindings", "idx_role_bindings_workspace", &["workspace_id"], false),
            index(
                "invitations",
                "idx_invitations_org_status",
                &["organization_id", "status"],
                false,
            ),
            index(
                "invitations",
                "idx_invitations_email",
                &["email_canonical", "status"],
                false,
            ),
            index(
                "invitation_role_bindings",
                "idx_invitation_role_bindings_invitation",
                &["invitation_id"],
                false,
            ),
            index(
                "invitation_role_bindings",
                "idx_invitation_role_bindings_role",
                &["role_id"],
                false,
            ),
            index("api_tokens", "idx_api_tokens_user", &["user_id"], false),
            index(
                "audit_events",
                "idx_audit_events_org",
                &["organization_id", "id"],
                false,
            ),
            index(
                "mail_outbox",
                "idx_mail_outbox_pending",
                &["sent_at", "next_attempt_at"],
                false,
            ),
        ];
        for idx in indexes {
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES.iter().rev() {
            manager
                .drop_table(Table::drop().table(*table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
