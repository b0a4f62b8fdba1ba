//! [`Then`]: two extractors one after the other. actix-web runs a handler's extractors at once
//! and answers with whichever fails first; who is calling must be settled before the body is
//! judged (an anonymous POST with a stale form goes to the login page, not to "form expired").

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::forms::Pending;

/// `A`, then — only once `A` succeeded — `B`.
pub struct Then<A, B>(pub A, pub B);

impl<A, B> FromRequest for Then<A, B>
where
    A: FromRequest + 'static,
    B: FromRequest + 'static,
    A::Error: Into<actix_web::Error>,
    B::Error: Into<actix_web::Error>,
{
    type Error = actix_web::Error;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let a = A::from_request(&req, &mut Payload::None)
                .await
                .map_err(Into::into)?;
            let b = B::from_request(&req, &mut payload)
                .await
                .map_err(Into::into)?;
            Ok(Then(a, b))
        })
    }
}
