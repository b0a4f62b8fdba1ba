//! The role catalogue. Users carry role names in `users.roles`; a name must be in this table
//! before it can be given to anyone.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::{role, user};
use super::{Store, StoreError, split_list};
use crate::domain::{RoleInfo, UnixTime};

fn to_domain(m: role::Model) -> RoleInfo {
    RoleInfo {
        name: m.name,
        description: m.description,
        builtin: m.builtin,
        created_at: UnixTime::from_secs(m.created_at),
    }
}

impl Store {
    pub async fn list_roles(&self) -> Result<Vec<RoleInfo>, StoreError> {
        Ok(role::Entity::find()
            .order_by_asc(role::Column::Name)
            .all(self.conn())
            .await?
            .into_iter()
            .map(to_domain)
            .collect())
    }

    pub async fn role(&self, name: &str) -> Result<Option<RoleInfo>, StoreError> {
        Ok(role::Entity::find_by_id(name.to_owned())
            .one(self.conn())
            .await?
            .map(to_domain))
    }

    /// Adds a custom role; `Conflict` when the name is taken.
    pub async fn create_role(
        &self,
        name: &str,
        description: &str,
        now: UnixTime,
    ) -> Result<RoleInfo, StoreError> {
        let _w = self.write_gate().await;
        let m = role::ActiveModel {
            name: Set(name.to_owned()),
            description: Set(description.to_owned()),
            builtin: Set(false),
            created_at: Set(now.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        Ok(to_domain(m))
    }

    /// How many users hold `name` (an administrative query: it reads every user whose role
    /// list contains the text, then matches whole names).
    pub async fn role_holders(&self, name: &str) -> Result<u64, StoreError> {
        let lists: Vec<String> = user::Entity::find()
            .select_only()
            .column(user::Column::Roles)
            .filter(user::Column::Roles.contains(name))
            .into_tuple()
            .all(self.conn())
            .await?;
        Ok(lists
            .iter()
            .filter(|l| split_list(l).any(|r| r == name))
            .count() as u64)
    }

    /// Deletes a custom role. `NotFound` when there is no such role; `Conflict` for a built-in
    /// role (the caller checks holders first).
    pub async fn delete_role(&self, name: &str) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        let Some(r) = self.role(name).await? else {
            return Err(StoreError::NotFound);
        };
        if r.builtin {
            return Err(StoreError::Conflict);
        }
        role::Entity::delete_by_id(name.to_owned())
            .exec(self.conn())
            .await?;
        Ok(())
    }
}
