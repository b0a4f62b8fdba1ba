//! OpenID Connect: discovery metadata, ID token claims, UserInfo, logout.

pub mod discovery;
pub mod id_token;
pub mod logout;
pub mod userinfo;
