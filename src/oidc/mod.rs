//! OpenID Connect: discovery metadata, ID token claims, UserInfo, logout.

pub mod discovery;
