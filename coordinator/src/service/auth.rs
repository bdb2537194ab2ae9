//! The bearer-token check in front of every RPC: with a token configured, a
//! call without `authorization: Bearer <token>` is refused (`UNAUTHENTICATED`).

use std::sync::Arc;

use headscan_proto::AUTH_METADATA;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Checks the bearer token of each call (accepts all without a token configured).
#[derive(Debug, Clone, Default)]
pub struct TokenCheck(Option<Arc<str>>);

impl TokenCheck {
    /// A check for `token` (`None`: every call passes).
    pub fn new(token: Option<&str>) -> Self {
        Self(token.map(|t| Arc::from(t.trim())))
    }
}

/// Compares without an early exit, so timing does not reveal the token.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Interceptor for TokenCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(want) = &self.0 else {
            return Ok(req);
        };
        let given = req
            .metadata()
            .get(AUTH_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(t) if same(t.as_bytes(), want.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated("invalid token")),
            None => Err(Status::unauthenticated("this coordinator requires a token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_without_the_token_are_refused() {
        let mut check = TokenCheck::new(Some("s3cret"));
        assert_eq!(
            check.call(Request::new(())).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut bad = Request::new(());
        bad.metadata_mut()
            .insert(AUTH_METADATA, "Bearer nope".parse().unwrap());
        assert!(check.call(bad).is_err());
        let mut good = Request::new(());
        good.metadata_mut()
            .insert(AUTH_METADATA, "Bearer s3cret".parse().unwrap());
        assert!(check.call(good).is_ok());
        assert!(TokenCheck::new(None).call(Request::new(())).is_ok());
    }
}
