//! The HTTP layer (actix-web only): the route table, extractors, page handlers and API handlers.
//! Handlers are thin: parse, call one service or store function, respond.

pub mod api;
pub mod extractors;
pub(crate) mod middleware;
pub mod pages;
pub mod routes;
pub mod support;

pub use routes::configure;
