//! Sessions recently seen to be alive, so that the sockets of a reconnect storm, and every post
//! and join of an open socket, do not read the user, device and session from the database each
//! time. An entry is keyed by the token's (user, device, session) and lives `ttl`
//! (`BANTER_WS_PRINCIPAL_CACHE_MS`, 0 turns it off). The token's signature and expiry are still
//! checked on every use. A committed change to the account, a device or a session reaches
//! every node as `AccessChange::User`, which `forget`s the user's entries at once, before the
//! user's sockets re-check; a read that began before the change cannot put it back (the
//! generation check). The REST API does not use it: a request reads the primary every time.
//!
//! Kept out: what makes a session alive (`banter_store`'s `active_principal`).

use std::time::Duration;

use banter_core::{DeviceId, User, UserId};

use banter_api::AccessCache;

type Key = (UserId, DeviceId, uuid::Uuid);

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

    /// The user of this session, if it was seen alive within the lifetime.
    pub fn get(&self, user: UserId, device: &DeviceId, session: uuid::Uuid) -> Option<User> {
        self.cache.get(&(user, device.clone(), session))
    }

    /// Caches a session read alive, unless something was forgotten since `generation`.
    pub fn remember(&self, device: DeviceId, session: uuid::Uuid, user: User, generation: u64) {
        self.cache
            .remember((user.id, device, session), user, generation);
    }

    /// Drops every session of `user` (their account, devices or sessions changed), and any
    /// answer still being read.
    pub fn forget(&self, user: UserId) {
        self.cache.forget_where(|(id, _, _)| *id == user);
    }

    /// Drops every entry (access changes may have been missed).
    pub fn forget_all(&self) {
        self.cache.forget_all();
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn a_session_is_kept_for_its_lifetime_and_forgotten_with_its_user() {
        let cache = Principals::new(Duration::from_secs(60));
        let (alice, device, session) =
            (user(), DeviceId::parse("d1").unwrap(), uuid::Uuid::now_v7());
        cache.remember(device.clone(), session, alice.clone(), cache.generation());
        assert_eq!(
            cache.get(alice.id, &device, session).map(|u| u.id),
            Some(alice.id)
        );
        assert!(
            cache
                .get(alice.id, &DeviceId::parse("d2").unwrap(), session)
                .is_none()
        );
        cache.forget(alice.id);
        assert!(cache.get(alice.id, &device, session).is_none());
    }

    #[test]
    fn a_read_that_began_before_a_change_is_not_cached() {
        let cache = Principals::new(Duration::from_secs(60));
        let (alice, device, session) =
            (user(), DeviceId::parse("d1").unwrap(), uuid::Uuid::now_v7());
        let before = cache.generation();
        cache.forget(alice.id); // the change commits while the read is in flight
        cache.remember(device.clone(), session, alice.clone(), before);
        assert!(cache.get(alice.id, &device, session).is_none());
    }

    #[test]
    fn expired_entries_and_a_zero_lifetime_give_nothing() {
        let (alice, device, session) =
            (user(), DeviceId::parse("d1").unwrap(), uuid::Uuid::now_v7());
        let off = Principals::new(Duration::ZERO);
        off.remember(device.clone(), session, alice.clone(), off.generation());
        assert!(off.get(alice.id, &device, session).is_none());
        let short = Principals::new(Duration::from_millis(20));
        short.remember(device.clone(), session, alice.clone(), short.generation());
        std::thread::sleep(Duration::from_millis(40));
        assert!(short.get(alice.id, &device, session).is_none());
    }
}
