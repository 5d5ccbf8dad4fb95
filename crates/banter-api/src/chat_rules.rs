//! `ChatRules`: what every new comment is checked against before it is committed, on REST and
//! on the socket alike: bans and timeouts (site-wide and per video), members-only chat, blocked
//! terms (refused, or held for review) and slow mode. Moderators of the video (its owner,
//! appointed moderators, site moderators and admins) are exempt from all but bans.
//!
//! The rules are read from the primary and cached per node for a bounded lifetime
//! (`BANTER_CHAT_RULES_CACHE_MS`), because a hot video takes thousands of comments a second.
//! Every committed change of them is announced as an `AccessChange::Chat` (or `SiteChat`) that
//! reaches every node through the bus and `forget`s the entry at once; a read that began before
//! the change cannot put the old rules back (the cache's generation), and after a bus outage
//! everything is forgotten. The lifetime bounds how long a change missed otherwise can go
//! unnoticed.
//!
//! Slow mode reads the poster's last comment on the video from the primary (so a second node
//! cannot be used to get round it) and reserves the slot on this node before the commit, so
//! that two posts sent at once to one node cannot both pass.
//!
//! Kept out: the rules' values (`banter_core::chat`), their storage (`banter_store`), who may
//! change them (the moderation routes).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banter_core::{
    AccessChange, BlockedTerm, BlockedTermsAction, ChatMode, ChatRole, CommentBody, User, UserId,
    Video, VideoId, fold_for_matching,
};
use banter_store::{Ban, BanScope, PrimaryPool, StoreError};
use time::OffsetDateTime;

use futures_util::future::BoxFuture;

use crate::access_cache::AccessCache;
use crate::shared_reads::SharedReads;
use crate::{ApiError, codes};

/// A read of rules, shared by every post that missed the cache while it ran: the rules and the
/// cache generation taken before the read.
type Read<T> = Result<(Arc<T>, u64), Arc<StoreError>>;

/// Rules cached for a bounded lifetime, with the reads of missing entries shared: a burst of
/// posts that misses the cache reads once.
struct CachedRules<K, T> {
    cache: AccessCache<K, Arc<T>>,
    reads: SharedReads<K, Read<T>>,
}

impl<K: Eq + std::hash::Hash + Clone, T: Send + Sync + 'static> CachedRules<K, T> {
    fn new(ttl: Duration) -> Self {
        Self {
            cache: AccessCache::new(ttl),
            reads: SharedReads::default(),
        }
    }

    /// The rules of `key` from the cache, or from `read`, shared with every caller that misses
    /// while it runs.
    async fn get_or_read(
        &self,
        key: &K,
        read: impl FnOnce() -> BoxFuture<'static, Result<T, StoreError>>,
    ) -> Result<Arc<T>, StoreError> {
        if let Some(rules) = self.cache.get(key) {
            return Ok(rules);
        }
        let generation = self.cache.generation();
        let read = move || -> BoxFuture<'static, Read<T>> {
            let rules = read();
            Box::pin(async move {
                let rules = rules.await.map_err(Arc::new)?;
                Ok((Arc::new(rules), generation))
            })
        };
        let (rules, generation) = self.reads.read(key, read).await.map_err(|e| e.copy())?;
        self.cache.remember(key.clone(), rules.clone(), generation);
        Ok(rules)
    }

    /// Drops `key`, and any read of it under way.
    fn forget(&self, key: &K) {
        self.reads.forget(key);
        self.cache.forget(key);
    }

    fn forget_all(&self) {
        self.reads.forget_all();
        self.cache.forget_all();
    }
}

/// Beyond this many slow-mode slots on one node, slots older than the longest slow mode go.
const SLOW_SLOTS: usize = 100_000;

/// One video's rules as read at one moment.
#[derive(Debug)]
pub struct VideoRules {
    /// `None`: the video has no row yet (public, no owner, default settings).
    pub video: Option<Video>,
    pub moderators: HashSet<UserId>,
    pub bans: HashMap<UserId, Ban>,
    pub terms: Vec<BlockedTerm>,
}

/// The site-wide rules as read at one moment.
#[derive(Debug)]
pub struct SiteRules {
    pub bans: HashMap<UserId, Ban>,
    pub terms: Vec<BlockedTerm>,
}

impl VideoRules {
    /// The role of `user` on this video, if they moderate it.
    pub fn role_of(&self, user: &User) -> Option<ChatRole> {
        ChatRole::of(
            user,
            self.video.as_ref().and_then(|v| v.owner_id),
            self.moderators.contains(&user.id),
        )
    }
}

pub struct ChatRules {
    videos: CachedRules<VideoId, VideoRules>,
    site: CachedRules<(), SiteRules>,
    /// When each (video, poster) last passed slow mode on this node.
    slow: Mutex<HashMap<(VideoId, UserId), Instant>>,
}

/// A post the rules let through.
pub struct Admission<'a> {
    pub slot: SlowSlot<'a>,
    /// The blocked term it matched, on a video that holds such comments for review.
    pub hold: Option<BlockedTerm>,
}

/// A slow-mode slot taken by a post; give it back if the post is not committed after all.
pub struct SlowSlot<'a> {
    rules: &'a ChatRules,
    key: Option<(VideoId, UserId)>,
}

impl SlowSlot<'_> {
    /// The post failed to commit: the poster may try again at once.
    pub fn release(mut self) {
        if let Some(key) = self.key.take() {
            self.rules.slow.lock().expect("slow mode lock").remove(&key);
        }
    }
}

impl ChatRules {
    pub fn new(ttl: Duration) -> ChatRules {
        ChatRules {
            videos: CachedRules::new(ttl),
            site: CachedRules::new(ttl),
            slow: Mutex::new(HashMap::new()),
        }
    }

    /// The rules of `video`, from the cache or the primary.
    pub async fn video(
        &self,
        primary: &PrimaryPool,
        video: &VideoId,
    ) -> Result<Arc<VideoRules>, StoreError> {
        let (pool, key) = (primary.clone(), video.clone());
        self.video_or_read(video, move || {
            Box::pin(async move { read_video_rules(&pool, &key).await })
        })
        .await
    }

    /// The rules of `video` from the cache, or from `read`, shared with every caller that
    /// misses while it runs.
    async fn video_or_read(
        &self,
        video: &VideoId,
        read: impl FnOnce() -> BoxFuture<'static, Result<VideoRules, StoreError>>,
    ) -> Result<Arc<VideoRules>, StoreError> {
        self.videos.get_or_read(video, read).await
    }

    async fn site(&self, primary: &PrimaryPool) -> Result<Arc<SiteRules>, StoreError> {
        let pool = primary.clone();
        self.site
            .get_or_read(&(), move || {
                Box::pin(async move { read_site_rules(&pool).await })
            })
            .await
    }

    /// Checks a post of `body` by `user` on `video` against the chat's rules, and takes the
    /// poster's slow-mode slot when slow mode is on. A blocked term refuses the post, or, on a
    /// video that holds such comments, admits it to be held (`Admission::hold`).
    pub async fn admit(
        &self,
        primary: &PrimaryPool,
        user: &User,
        video: &VideoId,
        body: &CommentBody,
    ) -> Result<Admission<'_>, ApiError> {
        let now = OffsetDateTime::now_utc();
        let site = self.site(primary).await?;
        if let Some(ban) = site.bans.get(&user.id).filter(|b| b.is_active(now)) {
            return Err(refused(ban, now, "this site"));
        }
        let rules = self.video(primary, video).await?;
        if let Some(ban) = rules.bans.get(&user.id).filter(|b| b.is_active(now)) {
            return Err(refused(ban, now, "this chat"));
        }
        let none = SlowSlot {
            rules: self,
            key: None,
        };
        if rules.role_of(user).is_some() {
            return Ok(Admission {
                slot: none,
                hold: None,
            });
        }
        let settings = rules.video.as_ref().map(|v| v.chat).unwrap_or_default();
        if settings.chat_mode == ChatMode::Members && !primary.is_member(video, user.id).await? {
            return Err(ApiError::ChatRefused {
                code: codes::MEMBERS_ONLY_CHAT,
                message: "this chat is for the video's members only".into(),
                retry_after: None,
            });
        }
        // Folding costs a pass over the body with ICU data: only when there are terms.
        let matched = if rules.terms.is_empty() && site.terms.is_empty() {
            None
        } else {
            let folded = fold_for_matching(body.as_ref());
            BlockedTerm::first_in(&folded, rules.terms.iter().chain(&site.terms))
        };
        let hold = match (matched, settings.blocked_terms) {
            (None, _) => None,
            (Some(_), BlockedTermsAction::Refuse) => {
                return Err(ApiError::validation(
                    codes::BLOCKED_TERM,
                    "your comment contains a term this chat does not allow",
                ));
            }
            (Some(term), BlockedTermsAction::Hold) => Some(term.clone()),
        };
        if settings.slow_mode_seconds == 0 {
            return Ok(Admission { slot: none, hold });
        }
        let interval = Duration::from_secs(u64::from(settings.slow_mode_seconds));
        let key = (video.clone(), user.id);
        self.reserve(&key, interval)?;
        // Another node may have taken a comment of this poster's a moment ago.
        let last = match primary.last_comment_at(video, user.id).await {
            Ok(last) => last,
            Err(e) => {
                self.slow.lock().expect("slow mode lock").remove(&key);
                return Err(e.into());
            }
        };
        if let Some(last) = last {
            let since = Duration::try_from(now - last).unwrap_or_default();
            if since < interval {
                let posted_at = Instant::now()
                    .checked_sub(since)
                    .unwrap_or_else(Instant::now);
                self.slow
                    .lock()
                    .expect("slow mode lock")
                    .insert(key, posted_at);
                return Err(ApiError::SlowMode {
                    retry_after: interval - since,
                });
            }
        }
        Ok(Admission {
            slot: SlowSlot {
                rules: self,
                key: Some(key),
            },
            hold,
        })
    }

    /// Takes the poster's slot on this node, or says how long until it is free.
    fn reserve(&self, key: &(VideoId, UserId), interval: Duration) -> Result<(), ApiError> {
        let mut slow = self.slow.lock().expect("slow mode lock");
        if let Some(at) = slow.get(key) {
            let since = at.elapsed();
            if since < interval {
                return Err(ApiError::SlowMode {
                    retry_after: interval - since,
                });
            }
        }
        if slow.len() >= SLOW_SLOTS {
            let longest = Duration::from_secs(u64::from(banter_core::SLOW_MODE_MAX_SECONDS));
            slow.retain(|_, at| at.elapsed() < longest);
            if slow.len() >= SLOW_SLOTS {
                slow.clear();
            }
        }
        slow.insert(key.clone(), Instant::now());
        Ok(())
    }

    /// Forgets what `change` touches, and any read of it still under way.
    pub fn forget(&self, change: &AccessChange) {
        match change {
            AccessChange::Chat(video) | AccessChange::Video(video) => self.videos.forget(video),
            AccessChange::SiteChat => self.site.forget_all(),
            AccessChange::User(_) | AccessChange::Member { .. } => {}
        }
    }

    /// Forgets everything (changes may have been missed while the bus was down).
    pub fn forget_all(&self) {
        self.videos.forget_all();
        self.site.forget_all();
    }
}

/// A video's rules as the primary has them now.
async fn read_video_rules(
    primary: &PrimaryPool,
    video: &VideoId,
) -> Result<VideoRules, StoreError> {
    let found = primary.get_video(video).await?;
    let (moderators, bans) = match &found {
        // No row: no moderators could have been appointed; bans may exist (by site moderators).
        None => (
            HashSet::new(),
            primary.bans(&BanScope::Video(video.clone())).await?,
        ),
        Some(_) => (
            primary
                .video_moderators(video)
                .await?
                .into_iter()
                .map(|(id, _)| id)
                .collect(),
            primary.bans(&BanScope::Video(video.clone())).await?,
        ),
    };
    let terms = primary
        .blocked_terms(&BanScope::Video(video.clone()))
        .await?;
    Ok(VideoRules {
        video: found,
        moderators,
        bans: bans.into_iter().map(|b| (b.user_id, b)).collect(),
        terms,
    })
}

/// The site-wide rules as the primary has them now.
async fn read_site_rules(primary: &PrimaryPool) -> Result<SiteRules, StoreError> {
    Ok(SiteRules {
        bans: primary
            .bans(&BanScope::Site)
            .await?
            .into_iter()
            .map(|b| (b.user_id, b))
            .collect(),
        terms: primary.blocked_terms(&BanScope::Site).await?,
    })
}

fn refused(ban: &Ban, now: OffsetDateTime, place: &str) -> ApiError {
    let because = ban
        .reason
        .as_deref()
        .map(|r| format!(" (reason: {r})"))
        .unwrap_or_default();
    match ban.expires_at {
        None => ApiError::ChatRefused {
            code: codes::BANNED,
            message: format!("you are banned from {place}{because}"),
            retry_after: None,
        },
        Some(until) => {
            let left = Duration::try_from(until - now).unwrap_or_default();
            ApiError::ChatRefused {
                code: codes::TIMED_OUT,
                message: format!(
                    "you are timed out of {place} for {} s more{because}",
                    crate::error::whole_seconds(left)
                ),
                retry_after: Some(left),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A read of empty rules that counts itself and takes 50 ms.
    fn counted(
        reads: &Arc<AtomicUsize>,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<VideoRules, StoreError>> {
        let reads = reads.clone();
        move || {
            reads.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(VideoRules {
                    video: None,
                    moderators: HashSet::new(),
                    bans: HashMap::new(),
                    terms: Vec::new(),
                })
            })
        }
    }

    #[tokio::test]
    async fn posts_that_miss_the_cache_together_read_the_rules_once() {
        let rules = ChatRules::new(Duration::from_secs(5));
        let video = VideoId::parse("hot").unwrap();
        let reads = Arc::new(AtomicUsize::new(0));
        let burst = (0..200).map(|_| rules.video_or_read(&video, counted(&reads)));
        for answer in futures_util::future::join_all(burst).await {
            answer.unwrap();
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for the burst");
        // Cached now; a change forgets it, and the next post reads again.
        rules.video_or_read(&video, counted(&reads)).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        rules.forget(&AccessChange::Chat(video.clone()));
        rules.video_or_read(&video, counted(&reads)).await.unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_read_fails_every_post_that_shared_it_and_is_not_cached() {
        let rules = ChatRules::new(Duration::from_secs(5));
        let video = VideoId::parse("hot").unwrap();
        let failing = || -> BoxFuture<'static, Result<VideoRules, StoreError>> {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(StoreError::Busy)
            })
        };
        let burst = (0..10).map(|_| rules.video_or_read(&video, failing));
        for answer in futures_util::future::join_all(burst).await {
            assert!(matches!(answer, Err(StoreError::Busy)), "{answer:?}");
        }
        let reads = Arc::new(AtomicUsize::new(0));
        rules.video_or_read(&video, counted(&reads)).await.unwrap();
        assert_eq!(
            reads.load(Ordering::SeqCst),
            1,
            "the failure was not cached"
        );
    }
}
