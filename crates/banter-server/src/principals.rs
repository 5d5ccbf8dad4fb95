//! Sessions recently seen to be alive, so that the sockets of a reconnect storm, and every post
//! and join of an open socket, do not read the user (and for Banter's own tokens the device and
//! session) from the database each time. An entry is keyed by the token's (user, device,
//! session), or (issuer, subject) for an external provider's token, and lives `ttl`
//! (`BANTER_WS_PRINCIPAL_CACHE_MS`, 0 turns it off). The token's signature and expiry are still
//! checked on every use, and an external token whose roles claim now gives another role is not
//! answered from the cache (the read updates the role). A committed change to the account, a
//! device or a session reaches every node as `AccessChange::User`, which `forget`s the user's
//! entries at once, before the user's sockets re-check; a read that began before the change
//! cannot put it back (the generation check). The REST API does not use it: a request reads
//! the primary every time.
//!
//! Kept out: what makes a session alive (`banter_store`'s `active_principal`, which reads the
//! misses that arrive together in one query).

use std::sync::Arc;
use std::time::Duration;

use banter_api::{Credential, Principal, Token};
use banter_core::{DeviceId, User, UserId};

use banter_api::AccessCache;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Session(UserId, DeviceId, uuid::Uuid),
    External(Arc<str>, String),
    /// Never cached (sockets refuse API keys); here so every token has a key.
    Backend(uuid::Uuid),
}

fn key(token: &Token) -> Key {
    match token {
        Token::Local(v) => Key::Session(v.user, v.device.clone(), v.session),
        Token::External(e) => Key::External(e.issuer.clone(), e.subject.clone()),
        Token::ApiKey(k) => Key::Backend(k.id),
    }
}

pub struct Principals {
    cache: AccessCache<Key, User>,
}

impl Principals {
    pub fn new(ttl: Duration) -> Principals {
        Principals {
            cache: AccessCache::new(ttl),
        }
    }

    /// Take this before reading a session, and pass it to `remember`.
    pub fn generation(&self) -> u64 {
        self.cache.generation()
    }

    /// The principal of this token, if its session was seen alive within the lifetime.
    pub fn get(&self, token: &Token) -> Option<Principal> {
        if matches!(token, Token::ApiKey(_)) {
            return None;
        }
        let user = self.cache.get(&key(token))?;
        let credential = match token {
            Token::Local(v) => Credential::Session {
                device: v.device.clone(),
                session: v.session,
            },
            Token::External(e) => {
                if e.role.is_some_and(|role| role != user.role) {
                    return None;
                }
                Credential::External {
                    issuer: e.issuer.clone(),
                }
            }
            Token::ApiKey(_) => return None,
        };
        Some(Principal {
            user,
            credential,
            expires_at: token.expires_at(),
        })
    }

    /// Caches a principal read alive, unless something was forgotten since `generation`.
    pub fn remember(&self, token: &Token, principal: &Principal, generation: u64) {
        if matches!(token, Token::ApiKey(_)) {
            return;
        }
        self.cache
            .remember(key(token), principal.user.clone(), generation);
    }

    /// Drops every session of `user` (their account, devices or sessions changed), and any
    /// answer still being read.
    pub fn forget(&self, user: UserId) {
        self.cache.forget_where(|_, cached| cached.id == user);
    }

    /// Drops every entry (access changes may have been missed).
    pub fn forget_all(&self) {
        self.cache.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use banter_api::{ExternalIdentity, Verified};
    use banter_core::{Email, Role, Username};
    use time::OffsetDateTime;

    use super::*;

    fn user() -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("a@example.com").unwrap(),
            username: Username::parse("alice").unwrap(),
            role: Role::User,
            is_active: true,
            last_login_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn session(user: &User, device: &str) -> (Token, Principal) {
        let verified = Verified {
            user: user.id,
            device: DeviceId::parse(device).unwrap(),
            session: uuid::Uuid::now_v7(),
            expires_at: 42,
        };
        let principal = Principal {
            user: user.clone(),
            credential: Credential::Session {
                device: verified.device.clone(),
                session: verified.session,
            },
            expires_at: 42,
        };
        (Token::Local(verified), principal)
    }

    fn external(user: &User, role: Option<Role>) -> (Token, Principal) {
        let identity = ExternalIdentity {
            issuer: "https://idp.example".into(),
            subject: "sub-1".into(),
            usernames: vec![],
            role,
            expires_at: 43,
        };
        let principal = Principal {
            user: user.clone(),
            credential: Credential::External {
                issuer: identity.issuer.clone(),
            },
            expires_at: 43,
        };
        (Token::External(identity), principal)
    }

    #[test]
    fn a_session_is_kept_for_its_lifetime_and_forgotten_with_its_user() {
        let cache = Principals::new(Duration::from_secs(60));
        let alice = user();
        let (token, principal) = session(&alice, "d1");
        cache.remember(&token, &principal, cache.generation());
        assert_eq!(cache.get(&token).map(|p| p.user.id), Some(alice.id));
        let (other_device, _) = session(&alice, "d2");
        assert!(cache.get(&other_device).is_none());
        cache.forget(alice.id);
        assert!(cache.get(&token).is_none());
    }

    #[test]
    fn an_external_subject_is_kept_until_its_user_changes_or_its_role_claim_differs() {
        let cache = Principals::new(Duration::from_secs(60));
        let alice = user();
        let (token, principal) = external(&alice, Some(Role::User));
        cache.remember(&token, &principal, cache.generation());
        let found = cache.get(&token).unwrap();
        assert_eq!((found.user.id, found.expires_at), (alice.id, 43));
        assert_eq!(found.credential, principal.credential);
        let (promoted, _) = external(&alice, Some(Role::Admin));
        assert!(cache.get(&promoted).is_none(), "the role claim changed");
        let (unmanaged, _) = external(&alice, None);
        assert!(cache.get(&unmanaged).is_some());
        cache.forget(alice.id);
        assert!(cache.get(&token).is_none());
    }

    #[test]
    fn a_read_that_began_before_a_change_is_not_cached() {
        let cache = Principals::new(Duration::from_secs(60));
        let alice = user();
        let (token, principal) = session(&alice, "d1");
        let before = cache.generation();
        cache.forget(alice.id); // the change commits while the read is in flight
        cache.remember(&token, &principal, before);
        assert!(cache.get(&token).is_none());
    }

    #[test]
    fn expired_entries_and_a_zero_lifetime_give_nothing() {
        let alice = user();
        let (token, principal) = session(&alice, "d1");
        let off = Principals::new(Duration::ZERO);
        off.remember(&token, &principal, off.generation());
        assert!(off.get(&token).is_none());
        let short = Principals::new(Duration::from_millis(20));
        short.remember(&token, &principal, short.generation());
        std::thread::sleep(Duration::from_millis(40));
        assert!(short.get(&token).is_none());
    }
}
