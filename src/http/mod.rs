//! The HTTP layer (actix-web only): the route table, extractors, page handlers and API handlers.
//! Handlers are thin: parse, call one service or store function, respond.

pub mod api;
pub(crate) mod middleware;
pub mod routes;

pub use routes::configure;
