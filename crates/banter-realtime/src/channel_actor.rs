//! `ChannelActor`: the actix actor that runs one topic's `Channel` — its mailbox, its timers
//! and its supervision.
//!
//! - Mailbox: bounded at `RealtimeConfig::channel_mailbox`, written with `try_send`. Policy
//!   when full: a join is refused with `unavailable` (the client retries), a bus event is
//!   dropped (repaired from the database by `seq`), a presence snapshot is dropped (the next
//!   heartbeat carries the same), a catch-up request is dropped (the periodic repair runs
//!   anyway). Leaves use `do_send`, which queues past the bound: a leave is never lost, and
//!   there are at most as many as the topic has subscribers.
//! - One message at a time: every message, tick and repair runs on the channel through
//!   `Context::wait`, which holds back the mailbox and the timers until it has finished,
//!   database reads included. This is what keeps a joiner's history and the live stream from
//!   overlapping.
//! - Supervision: a panic in the channel is caught; the channel resumes from the last `seq`
//!   it sent to its subscribers and re-reads the tail, keeping subscribers, presence and the
//!   mailbox (the work that panicked is lost: a join's socket retries, a bus event is repaired).
//! - The actor stops after its last subscriber leaves; `on_idle` then unregisters it, and any
//!   message still queued is dropped (a join's socket sees its reply channel closed and joins
//!   the topic's new channel). An actor stopped from outside with work pending (its runtime
//!   shutting down) leaves the topic without telling the other nodes; their view of this
//!   node's viewers expires with its presence heartbeats.
//!
//! The per-frame delivery path does not go through any mailbox per viewer: the channel offers
//! each broadcast straight to the subscribers' `Outq`s (`fanout.rs`).

// The channel is borrowed across the awaits of each piece of work: sound, because
// `Context::wait` runs nothing else on this actor until that work is done (see `held`).
#![allow(clippy::await_holding_refcell_ref)]

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use actix::prelude::*;
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;

use crate::channel::{Channel, Command};

impl Message for Command {
    type Result = ();
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    IfIdle,
    Never,
}

pub(crate) struct ChannelActor {
    channel: Rc<RefCell<Channel>>,
    on_idle: Option<Box<dyn FnOnce()>>,
    /// A flush of held broadcasts is scheduled (see `channel::HOLD`).
    flush_due: bool,
    /// A repair of a gap is scheduled (see `sequence::GAP_WAIT`).
    repair_due: bool,
    /// Repairs tried for the open gap: each waits twice as long, up to a second (a database
    /// that is down is not asked 20 times a second).
    repairs: u32,
}

impl ChannelActor {
    /// Starts the actor on the current arbiter (the worker that asked for the topic).
    pub fn start(channel: Channel, on_idle: impl FnOnce() + 'static) -> Addr<Self> {
        let capacity = channel.config().channel_mailbox.max(1);
        ChannelActor::create(move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            ChannelActor {
                channel: Rc::new(RefCell::new(channel)),
                on_idle: Some(Box::new(on_idle)),
                flush_due: false,
                repair_due: false,
                repairs: 0,
            }
        })
    }

    /// Runs `work` on the channel with the mailbox and timers held back until it completes;
    /// then restarts the channel if it panicked. After a message (`Stop::IfIdle`) the actor
    /// stops if the topic has no subscriber left; timers and the start do not stop it.
    fn exclusive<F, Fut>(&mut self, ctx: &mut Context<Self>, stop: Stop, work: F)
    where
        F: FnOnce(Rc<RefCell<Channel>>) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        self.run(ctx, stop, Box::pin(work(self.channel.clone())));
    }

    fn run(&mut self, ctx: &mut Context<Self>, stop: Stop, work: LocalBoxFuture<'static, ()>) {
        let work = AssertUnwindSafe(work).catch_unwind();
        ctx.wait(work.into_actor(self).map(move |result, actor, ctx| {
            if result.is_err() {
                actor.channel.borrow_mut().restart();
                let channel = actor.channel.clone();
                let catch_up = async move { held(&channel).catch_up().await };
                actor.run(ctx, Stop::IfIdle, Box::pin(catch_up));
            }
            if stop == Stop::IfIdle && actor.channel.borrow().is_idle() {
                ctx.stop();
            }
            actor.schedule_flush(ctx);
            actor.schedule_repair(ctx);
        }));
    }

    /// A gap still open `GAP_WAIT` after it appeared is filled from the database.
    fn schedule_repair(&mut self, ctx: &mut Context<Self>) {
        if !self.channel.borrow().has_gap() {
            self.repairs = 0;
            return;
        }
        if self.repair_due {
            return;
        }
        self.repair_due = true;
        let wait = (crate::sequence::GAP_WAIT * 2u32.pow(self.repairs.min(5)))
            .min(std::time::Duration::from_secs(1));
        self.repairs += 1;
        ctx.run_later(wait, |actor, ctx| {
            actor.repair_due = false;
            if actor.channel.borrow().has_gap() {
                actor.exclusive(ctx, Stop::Never, |channel| async move {
                    held(&channel).catch_up().await;
                });
            }
        });
    }

    /// Held broadcasts and presence changes go out when due (`channel::HOLD`), between two
    /// pieces of work.
    fn schedule_flush(&mut self, ctx: &mut Context<Self>) {
        if self.flush_due {
            return;
        }
        let now = std::time::Instant::now();
        let Some(due) = self.channel.borrow().due(now) else {
            return;
        };
        self.flush_due = true;
        ctx.run_later(due.saturating_duration_since(now), |actor, ctx| {
            actor.flush_due = false;
            actor
                .channel
                .borrow_mut()
                .flush_if_due(std::time::Instant::now());
            // Slow consumers dropped by the flush leave with a presence change of their own.
            actor.schedule_flush(ctx);
        });
    }
}

/// The channel, borrowed for one piece of work. Holding the borrow across the work's awaits is
/// sound: `Context::wait` runs nothing else on this actor until the work is done, and a panic
/// releases the borrow as it unwinds.
fn held(channel: &Rc<RefCell<Channel>>) -> std::cell::RefMut<'_, Channel> {
    channel.borrow_mut()
}

impl Actor for ChannelActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let address = ctx.address();
        self.channel
            .borrow_mut()
            .set_report_slow(std::sync::Arc::new(move |sid| {
                address.do_send(Command::Leave { sid });
            }));
        self.exclusive(ctx, Stop::Never, |channel| async move {
            held(&channel).start().await;
        });
        let (tick, repair) = {
            let channel = self.channel.borrow();
            let config = channel.config();
            (config.viewer_count_interval, config.repair_interval)
        };
        ctx.run_interval(tick, |actor, ctx| {
            actor.exclusive(ctx, Stop::Never, |channel| async move {
                held(&channel).tick().await;
            });
        });
        ctx.run_interval(repair, |actor, ctx| {
            actor.exclusive(ctx, Stop::Never, |channel| async move {
                held(&channel).catch_up().await;
            });
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // A piece of work still holds the channel when the actor is stopped from outside with
        // it pending (the arbiter shutting down): the topic is then left without telling the
        // other nodes, whose view of this node's viewers expires with its heartbeats.
        match self.channel.try_borrow_mut() {
            Ok(mut channel) => channel.leave_topic(),
            Err(_) => tracing::debug!("channel stopped with its work pending; topic left silently"),
        }
        if let Some(on_idle) = self.on_idle.take() {
            on_idle();
        }
    }
}

impl Handler<Command> for ChannelActor {
    type Result = ();

    fn handle(&mut self, command: Command, ctx: &mut Self::Context) {
        self.exclusive(ctx, Stop::IfIdle, move |channel| async move {
            held(&channel).handle(command).await;
        });
    }
}
