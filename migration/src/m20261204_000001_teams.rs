//! Teams: named groups of an organization's members that hold role bindings as members do
//! (organization-wide or in one workspace). A member's keys are the union of their own
//! bindings' and their teams'. The three tables move the change clock like the other tables
//! decisions are read from, so kept standings never outlive a change to a team.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables of this migration, each moving the change clock.
const TABLES: [&str; 3] = ["teams", "team_members", "team_role_bindings"];

fn fk(
    from: &'static str,
    column: &'static str,
    to: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from}_{column}"))
        .from(from, column)
        .to(to, "id")
        .on_delete(on_delete)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ForeignKeyAction::{Cascade, Restrict, SetNull};
        manager
            .create_table(
                Table::create()
                    .table("teams")
                    .col(pk_uuid("id"))
                    .col(uuid("organization_id"))
                    .col(string("name"))
                    // Lower-cased, for uniqueness in the organization regardless of case.
                    .col(string("name_canonical"))
                    .col(string("description"))
                    .col(uuid_null("created_by_user_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut fk("teams", "organization_id", "organizations", Cascade))
                    .foreign_key(&mut fk("teams", "created_by_user_id", "users", SetNull))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_teams_name")
                    .table("teams")
                    .col("organization_id")
                    .col("name_canonical")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("team_members")
                    .col(uuid("team_id"))
                    .col(uuid("membership_id"))
                    .col(uuid_null("added_by_user_id"))
                    .col(timestamp_with_time_zone("added_at"))
                    .primary_key(Index::create().col("team_id").col("membership_id"))
                    .foreign_key(&mut fk("team_members", "team_id", "teams", Cascade))
                    // Removing a member takes them out of every team in the same statement.
                    .foreign_key(&mut fk("team_members", "membership_id", "memberships", Cascade))
                    .foreign_key(&mut fk("team_members", "added_by_user_id", "users", SetNull))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_team_members_membership")
                    .table("team_members")
                    .col("membership_id")
                    .to_owned(),
            )
            .await?;
        // scope_key as in role_bindings: "org" or the workspace id.
        manager
            .create_table(
                Table::create()
                    .table("team_role_bindings")
                    .col(pk_uuid("id"))
                    .col(uuid("team_id"))
                    .col(uuid("role_id"))
                    .col(uuid_null("workspace_id"))
                    .col(string("scope_key"))
                    .col(uuid_null("granted_by_user_id"))
                    .col(timestamp_with_time_zone("granted_at"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(string_null("reason"))
                    .foreign_key(&mut fk("team_role_bindings", "team_id", "teams", Cascade))
                    .foreign_key(&mut fk("team_role_bindings", "role_id", "roles", Restrict))
                    .foreign_key(&mut fk("team_role_bindings", "workspace_id", "workspaces", Cascade))
                    .foreign_key(&mut fk("team_role_bindings", "granted_by_user_id", "users", SetNull))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "uq_team_role_bindings_scope",
                &["team_id", "role_id", "scope_key"][..],
                true,
            ),
            ("idx_team_role_bindings_role", &["role_id"][..], false),
            ("idx_team_role_bindings_workspace", &["workspace_id"][..], false),
            ("idx_team_role_bindings_expires_at", &["expires_at"][..], false),
        ] {
            let mut index = Index::create();
            index.name(name).table("team_role_bindings");
            for column in columns {
                index.col(*column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                // The same deferred trigger as the other kept tables (see the change clock
                // migration): one clock move per transaction, announced when a server listens.
                for table in TABLES {
                    db.execute_unprepared(&format!(
                        "CREATE CONSTRAINT TRIGGER {table}_tick_change_clock AFTER INSERT OR UPDATE OR DELETE ON {table} \
                         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION guildhall_tick_change_clock()"
                    ))
                    .await?;
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {table}_truncate_change_clock AFTER TRUNCATE ON {table} \
                         FOR EACH STATEMENT EXECUTE FUNCTION guildhall_tick_change_clock()"
                    ))
                    .await?;
                }
            }
            _ => {
                for table in TABLES {
                    for (suffix, event) in [("insert", "INSERT"), ("update", "UPDATE"), ("delete", "DELETE")] {
                        db.execute_unprepared(&format!(
                            "CREATE TRIGGER {table}_{suffix}_tick_change_clock AFTER {event} ON {table} \
                             BEGIN UPDATE change_clock SET seq = seq + 1 WHERE id = 1; END"
                        ))
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping a table drops its triggers.
        for table in ["team_role_bindings", "team_members", "teams"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
