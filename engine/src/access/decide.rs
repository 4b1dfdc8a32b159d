//! The per-request decision: a pure function of the snapshot, the request
//! facts and the time.
//!
//! Order (DSS's roles: filter, authenticate, authorize):
//! 1. a path with an empty, `.` or `..` segment → 403; a protected file → 404;
//! 2. client-subnet rules → 403 (before any credentials);
//! 3. signed URL, unless `signed_urls = "off"`: a valid one → allow; a bad
//!    one → 403 (expired, forged, wrong subnet, malformed); none → 403 when
//!    `required`, else go on;
//! 4. the access file that applies (or `require_auth_by_default`): none →
//!    allow; broken → 403; `require any-user` → allow; no `require` → 403;
//! 5. authenticate with the file's scheme → 401 with a fresh challenge when
//!    missing or wrong (`stale=true` for a right answer to an old nonce);
//! 6. authorize: `valid-user`, the user listed, or a group of theirs listed
//!    → allow; else 403.

use super::authorization::{
    basic_challenge, digest_challenge, parse_authorization, BasicCredentials, Credentials,
    DigestCredentials,
};
use super::config::{AuthScheme, SignedUrlMode};
use super::decision::{AccessRequest, Decision, Grant, GrantedBy, Refusal};
use super::digest::{self, Ha1, NonceCheck, Qop};
use super::qtaccess::Requirement;
use super::rules::{AccessRules, Policy, Rules};
use super::signed_url::{self, SignedUrlError};
use super::subnet;
use super::users::UsersFile;

impl AccessRules {
    /// Decides one request (see the module docs for the order). No I/O, no
    /// lock, no clock: `req.now_unix_s` is the time.
    ///
    /// Call it for every request that names a catalog file (DESCRIBE, SETUP,
    /// PLAY, PAUSE, GET_PARAMETER, …); every request is treated as a READ
    /// (`<Limit WRITE>` blocks never apply).
    pub fn decide(&self, req: &AccessRequest<'_>) -> Decision {
        let forbid = |reason| Decision::Forbidden { reason };
        if req.path.starts_with('/')
            || (!req.path.is_empty()
                && req
                    .path
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == ".."))
        {
            return forbid(Refusal::BadPath);
        }
        if self.is_protected_file(req.path) {
            return Decision::NotFound {
                reason: Refusal::ProtectedFile,
            };
        }
        if let Err(d) = subnet::check(&self.subnets, req.path, req.peer) {
            return forbid(Refusal::Subnet(d));
        }
        if let Some(d) = self.check_signed_url(req) {
            return d;
        }
        let policy = match (self.policy_for(req.path), &self.default_policy) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => {
                return Decision::Allow(Grant {
                    user: None,
                    realm: None,
                    via: GrantedBy::NoAccessFile,
                })
            }
        };
        let rules = match policy.as_ref() {
            Policy::Broken { file, error } => {
                return forbid(Refusal::BrokenAccessFile {
                    file: file.clone(),
                    error: error.clone(),
                })
            }
            Policy::Rules(r) => r,
        };
        self.apply(rules, req)
    }

    /// Step 3; `None` means "go on to the access-file rules".
    fn check_signed_url(&self, req: &AccessRequest<'_>) -> Option<Decision> {
        let forbid = |e| {
            Some(Decision::Forbidden {
                reason: Refusal::SignedUrl(e),
            })
        };
        let key = match (self.signed_urls, &self.url_key) {
            (SignedUrlMode::Off, _) | (_, None) => return None,
            (_, Some(k)) => k,
        };
        match signed_url::find_params(req.query) {
            Err(e) => forbid(e),
            Ok(None) if self.signed_urls == SignedUrlMode::Required => {
                forbid(SignedUrlError::Missing)
            }
            Ok(None) => None,
            Ok(Some(params)) => {
                match signed_url::verify(key, req.path, params, req.peer, req.now_unix_s) {
                    Ok(g) => Some(Decision::Allow(Grant {
                        user: None,
                        realm: None,
                        via: GrantedBy::SignedUrl {
                            expires_at: g.expires_at,
                        },
                    })),
                    Err(e) => forbid(e),
                }
            }
        }
    }

    /// Steps 4–6 for a loaded access file.
    fn apply(&self, rules: &Rules, req: &AccessRequest<'_>) -> Decision {
        if rules.require.contains(&Requirement::AnyUser) {
            return Decision::Allow(Grant {
                user: None,
                realm: rules.auth_name.clone(),
                via: GrantedBy::AnyUser,
            });
        }
        if rules.require.is_empty() {
            return Decision::Forbidden {
                reason: Refusal::NoRequirement {
                    file: rules.file.clone().unwrap_or_default(),
                },
            };
        }
        self.authenticate_and_authorize(rules, req)
    }

    fn authenticate_and_authorize(&self, rules: &Rules, req: &AccessRequest<'_>) -> Decision {
        let Some(loaded) = &rules.users else {
            // Only `require any-user` files have no users file; handled above.
            return Decision::Forbidden {
                reason: Refusal::NoRequirement {
                    file: rules.file.clone().unwrap_or_default(),
                },
            };
        };
        let users = match &loaded.file {
            Ok(u) => u,
            Err(e) => {
                return Decision::Forbidden {
                    reason: Refusal::UnusableUsersFile {
                        file: loaded.path.clone(),
                        error: e.clone(),
                    },
                }
            }
        };
        // DSS: Basic shows AuthName when given; Digest must use the realm
        // the users file's HA1s were computed with.
        let realm = match rules.scheme {
            AuthScheme::Basic => rules.auth_name.as_deref().unwrap_or(&users.realm),
            AuthScheme::Digest => &users.realm,
        };
        let user = match self.authenticate(rules.scheme, users, realm, req) {
            Ok(u) => u,
            Err((reason, stale)) => {
                let challenge = match rules.scheme {
                    AuthScheme::Basic => basic_challenge(realm),
                    AuthScheme::Digest => digest_challenge(
                        realm,
                        &digest::mint_nonce(&self.nonce_key, realm, req.now_unix_s),
                        stale,
                    ),
                };
                return Decision::Challenge {
                    www_authenticate: vec![challenge],
                    reason,
                };
            }
        };
        self.authorize(rules, user, realm)
    }

    /// Step 5: the authenticated user name, or the refusal and whether the
    /// nonce was stale.
    fn authenticate(
        &self,
        scheme: AuthScheme,
        users: &UsersFile,
        realm: &str,
        req: &AccessRequest<'_>,
    ) -> Result<String, (Refusal, bool)> {
        let refuse = |r| Err((r, false));
        let Some(header) = req.authorization else {
            return refuse(Refusal::NoCredentials);
        };
        let creds = match parse_authorization(header) {
            Ok(c) => c,
            Err(e) => return refuse(Refusal::BadAuthorization(e)),
        };
        match (scheme, creds) {
            (AuthScheme::Basic, Credentials::Basic(b)) => check_basic(users, b),
            (AuthScheme::Digest, Credentials::Digest(d)) => self.check_digest(users, realm, d, req),
            (required, _) => refuse(Refusal::WrongScheme { required }),
        }
    }

    fn check_digest(
        &self,
        users: &UsersFile,
        realm: &str,
        d: DigestCredentials,
        req: &AccessRequest<'_>,
    ) -> Result<String, (Refusal, bool)> {
        let user = d.username.clone();
        let refuse = |r| Err((r, false));
        if d.realm != realm {
            return refuse(Refusal::WrongRealm { user });
        }
        if d.algorithm
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        {
            return refuse(Refusal::UnsupportedAlgorithm { user });
        }
        let qop = match (&d.qop, &d.nc, &d.cnonce) {
            (None, _, _) => None,
            (Some(q), Some(nc), Some(cnonce)) if q.eq_ignore_ascii_case("auth") => {
                Some(Qop { nc, cnonce, qop: q })
            }
            _ => return refuse(Refusal::UnsupportedQop { user }),
        };
        if !digest::uri_matches(&d.uri, req.uri) {
            return refuse(Refusal::UriMismatch { user });
        }
        let nonce = digest::check_nonce(
            &self.nonce_key,
            realm,
            &d.nonce,
            req.now_unix_s,
            self.nonce_lifetime_s,
        );
        if nonce == NonceCheck::Invalid {
            return refuse(Refusal::BadNonce { user });
        }
        let Some(ha1) = users.ha1(&d.username) else {
            return refuse(Refusal::UnknownUser { user });
        };
        let expected = digest::response(ha1, req.method, &d.uri, &d.nonce, qop);
        if !digest::response_matches(&expected, &d.response) {
            return refuse(Refusal::WrongResponse { user });
        }
        if nonce == NonceCheck::Stale {
            return Err((Refusal::StaleNonce { user }, true));
        }
        Ok(user)
    }

    /// Step 6.
    fn authorize(&self, rules: &Rules, user: String, realm: &str) -> Decision {
        let allow = |user| {
            Decision::Allow(Grant {
                user: Some(user),
                realm: Some(realm.to_string()),
                via: GrantedBy::Credentials,
            })
        };
        let mut groups_unusable = None;
        for r in &rules.require {
            let ok = match r {
                Requirement::AnyUser | Requirement::ValidUser => true,
                Requirement::Users(names) => names.contains(&user),
                Requirement::Groups(names) => {
                    match rules.groups.as_deref().map(|g| (&g.path, &g.file)) {
                        Some((_, Ok(g))) => names.iter().any(|n| g.is_member(&user, n)),
                        Some((path, Err(e))) => {
                            groups_unusable = Some((path.clone(), e.clone()));
                            false
                        }
                        None => false,
                    }
                }
            };
            if ok {
                return allow(user);
            }
        }
        let reason = match groups_unusable {
            Some((file, error)) => Refusal::UnusableGroupsFile { file, error },
            None => Refusal::NotPermitted {
                user,
                file: rules.file.clone(),
            },
        };
        Decision::Forbidden { reason }
    }
}

fn check_basic(users: &UsersFile, b: BasicCredentials) -> Result<String, (Refusal, bool)> {
    let user = b.user.clone();
    let Some(stored) = users.ha1(&b.user) else {
        return Err((Refusal::UnknownUser { user }, false));
    };
    // The HA1 in the file is over the users file's realm (not AuthName).
    let got = Ha1::compute(&b.user, &users.realm, b.password());
    if !got.ct_eq(stored) {
        return Err((Refusal::WrongPassword { user }, false));
    }
    Ok(user)
}
