//! Bearer-token authorisation: each token has scopes and an optional project list.
//!
//! Tokens are kept only as SHA-256 digests, and looked up by digest, so comparing them takes
//! the same time whatever the guess. With no tokens configured every request is allowed;
//! [`crate::config::Config::validate`] then only allows a loopback listen address.
//!
//! Authorisation reads only headers (and the path the caller parsed): routes check it before
//! they read a body. Where the project is known only later (a sentry-cli bundle names its
//! project in its own manifest), the [`Caller`] travels with the work and is asked again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::http::HeaderMap;
use sha2::Digest;

use crate::config::{AuthConfig, Scope};
use crate::error::{ApiError, ErrorCode};
use crate::types::ProjectId;

#[derive(Debug)]
struct Grant {
    name: String,
    scopes: HashSet<Scope>,
    /// `None`: every project.
    projects: Option<HashSet<String>>,
}

#[derive(Debug)]
pub struct Auth {
    tokens: HashMap<[u8; 32], Arc<Grant>>,
    anonymous: Arc<Grant>,
}

/// Who made a request, once authenticated: what its token may do.
#[derive(Debug, Clone)]
pub struct Caller {
    grant: Arc<Grant>,
}

impl Caller {
    /// The token's configured name; `anonymous` when auth is off.
    pub fn name(&self) -> &str {
        &self.grant.name
    }

    /// Whether the token has `scope` (or `admin`) and, if `project` is given, may use it.
    pub fn may(&self, scope: Scope, project: Option<&ProjectId>) -> Result<(), ApiError> {
        let grant = &self.grant;
        if !grant.scopes.contains(&scope) && !grant.scopes.contains(&Scope::Admin) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "token {:?} lacks the {} scope",
                    grant.name,
                    scope_name(scope)
                ),
            ));
        }
        if let (Some(project), Some(allowed)) = (project, &grant.projects) {
            if !allowed.contains(project.as_str()) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "token {:?} may not use project {:?}",
                        grant.name,
                        project.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether the token has `scope`, directly or through `admin`.
    pub fn has(&self, scope: Scope) -> bool {
        self.grant.scopes.contains(&scope) || self.grant.scopes.contains(&Scope::Admin)
    }
}

impl Auth {
    pub fn new(config: &AuthConfig) -> Auth {
        let tokens = config
            .tokens
            .iter()
            .map(|t| {
                (
                    digest(&t.token.0),
                    Arc::new(Grant {
                        name: t.name.clone(),
                        scopes: t.scopes.iter().copied().collect(),
                        projects: t.projects.as_ref().map(|p| p.iter().cloned().collect()),
                    }),
                )
            })
            .collect();
        let anonymous = Arc::new(Grant {
            name: "anonymous".into(),
            scopes: [Scope::Upload, Scope::Symbolicate, Scope::Admin].into(),
            projects: None,
        });
        Auth { tokens, anonymous }
    }

    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Who sent the request: 401 without a known bearer token (when auth is on).
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if !self.enabled() {
            return Ok(Caller {
                grant: self.anonymous.clone(),
            });
        }
        let token = bearer(headers).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "missing or malformed Authorization header; expected `Bearer <token>`",
            )
        })?;
        let grant = self.tokens.get(&digest(token)).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthenticated,
                "the token is not known to this server",
            )
        })?;
        Ok(Caller {
            grant: grant.clone(),
        })
    }

    /// Authenticates the request and checks that its token has `scope` (or `admin`) and, if
    /// `project` is given, may use that project.
    pub fn check(
        &self,
        headers: &HeaderMap,
        scope: Scope,
        project: Option<&ProjectId>,
    ) -> Result<Caller, ApiError> {
        let caller = self.caller(headers)?;
        caller.may(scope, project)?;
        Ok(caller)
    }
}

pub fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Upload => "upload",
        Scope::Symbolicate => "symbolicate",
        Scope::Admin => "admin",
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

fn digest(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}
