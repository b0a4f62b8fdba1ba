//! Whether an access token still stands (RFC 7662 §2.2): one SQL expression over the revocation
//! list, the client and the user, so that introspection, userinfo and the admin API decide it
//! inside the one query each already makes.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QuerySelect};

use super::entities::{client, revoked_token, user};
use super::{Store, StoreError};
use crate::domain::UnixTime;

/// What decides whether a signed, unexpired access token still stands: neither it nor its
/// grant is on the revocation list (`ids`: its `jti` and its grant id), the client it was
/// issued to still exists, and the user it names (`None` for a client's own token) still
/// exists, is not disabled and was not signed out everywhere after `issued_at` (a token from
/// the same second stands). RFC 7662 §2.2: a token is active only while the authorization
/// behind it is; deleting a client or a user, or disabling a user, ends their access tokens
/// at introspection and userinfo at once (resource servers verifying offline see them until
/// they expire).
#[derive(Debug, Clone, Copy)]
pub struct TokenStanding<'a> {
    pub ids: [&'a str; 2],
    pub client_id: &'a str,
    pub user_id: Option<&'a str>,
    pub issued_at: UnixTime,
}

impl TokenStanding<'_> {
    /// A boolean SQL expression: true when the token has ended.
    pub(super) fn ended(&self) -> sea_orm::sea_query::SimpleExpr {
        use sea_orm::sea_query::{ExprTrait, Query};
        let revoked = Query::select()
            .expr(Expr::val(1))
            .from(revoked_token::Entity)
            .and_where(revoked_token::Column::Id.is_in(self.ids))
            .to_owned();
        let client_exists = Query::select()
            .expr(Expr::val(1))
            .from(client::Entity)
            .and_where(client::Column::Id.eq(self.client_id))
            .to_owned();
        let mut ended = Expr::exists(revoked).or(Expr::exists(client_exists).not());
        if let Some(u) = self.user_id {
            let user_stands = Query::select()
                .expr(Expr::val(1))
                .from(user::Entity)
                .and_where(user::Column::Id.eq(u))
                .and_where(user::Column::Disabled.eq(false))
                .and_where(
                    user::Column::TokensValidAfter
                        .is_null()
                        .or(user::Column::TokensValidAfter.lte(self.issued_at.secs())),
                )
                .to_owned();
            ended = ended.or(Expr::exists(user_stands).not());
        }
        ended
    }
}

impl Store {
    /// The row `select` finds, and whether the access token `standing` describes has ended
    /// ([`TokenStanding`]), in one statement: the callers would otherwise make two, and on
    /// SQLite every statement is a hand-off to a connection's thread and back.
    pub(super) async fn find_with_standing<E>(
        &self,
        select: sea_orm::Select<E>,
        standing: TokenStanding<'_>,
    ) -> Result<Option<(E::Model, bool)>, StoreError>
    where
        E: EntityTrait,
        E::Model: sea_orm::FromQueryResult,
    {
        use sea_orm::{ConnectionTrait, FromQueryResult, QueryTrait};
        const ENDED: &str = "token_ended";
        let stmt = select
            .expr_as(standing.ended(), ENDED)
            .build(self.conn().get_database_backend());
        let Some(row) = self.conn().query_one_raw(stmt).await? else {
            return Ok(None);
        };
        let ended: bool = row.try_get("", ENDED)?;
        Ok(Some((E::Model::from_query_result(&row, "")?, ended)))
    }

    /// Whether the access token `standing` describes has ended ([`TokenStanding`]).
    pub async fn token_ended(&self, standing: TokenStanding<'_>) -> Result<bool, StoreError> {
        use sea_orm::ConnectionTrait;
        use sea_orm::sea_query::Query;
        const ENDED: &str = "token_ended";
        let stmt = Query::select().expr_as(standing.ended(), ENDED).to_owned();
        let stmt = self.conn().get_database_backend().build(&stmt);
        let row = self.conn().query_one_raw(stmt).await?;
        Ok(match row {
            Some(row) => row.try_get("", ENDED)?,
            None => true,
        })
    }
}
