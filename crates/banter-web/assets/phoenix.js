// Banter's Phoenix Channels V2 client: the part of the `phoenix` npm package's API the video
// page uses (Socket with push and onMessage, Channel, Push), with the same behaviour: heartbeats, reconnect backoff,
// automatic rejoin that re-evaluates the channel's params (so `since_seq` is current), pushes
// buffered until joined, receive hooks kept across rejoins. The stock `phoenix.mjs` can be
// served in its place unchanged.

const VSN = "2.0.0";
const DEFAULT_TIMEOUT = 10000;
const HEARTBEAT_MS = 30000;
const EVENTS = {
  join: "phx_join",
  leave: "phx_leave",
  reply: "phx_reply",
  close: "phx_close",
  error: "phx_error",
};
const socketBackoff = (tries) => [10, 50, 100, 150, 200, 250, 500, 1000, 2000][tries - 1] || 5000;
const rejoinBackoff = (tries) => [1000, 2000, 5000][tries - 1] || 10000;
const closure = (value) => (typeof value === "function" ? value : () => value);

class Timer {
  constructor(callback, after) {
    this.callback = callback;
    this.after = after;
    this.tries = 0;
    this.handle = null;
  }
  reset() {
    this.tries = 0;
    clearTimeout(this.handle);
  }
  schedule() {
    clearTimeout(this.handle);
    this.handle = setTimeout(() => {
      this.tries += 1;
      this.callback();
    }, this.after(this.tries + 1));
  }
}

export class Push {
  constructor(channel, event, payload, timeout) {
    this.channel = channel;
    this.event = event;
    this.payload = closure(payload || {});
    this.timeout = timeout;
    this.hooks = [];
    this.received = null;
    this.ref = null;
    this.timer = null;
  }

  receive(status, callback) {
    if (this.received && this.received.status === status) {
      callback(this.received.response);
    }
    this.hooks.push({ status, callback });
    return this;
  }

  resend(timeout) {
    this.timeout = timeout;
    this.received = null;
    this.send();
  }

  send() {
    this.cancel();
    this.ref = this.channel.socket.makeRef();
    this.channel.socket.registerReply(this.ref, (status, response) => this.trigger(status, response));
    this.timer = setTimeout(() => this.trigger("timeout", {}), this.timeout);
    this.channel.socket.push({
      join_ref: this.channel.joinRef(),
      ref: this.ref,
      topic: this.channel.topic,
      event: this.event,
      payload: this.payload(),
    });
  }

  trigger(status, response) {
    if (this.received) return;
    this.cancel();
    this.received = { status, response };
    for (const hook of this.hooks) {
      if (hook.status === status) hook.callback(response);
    }
  }

  cancel() {
    clearTimeout(this.timer);
    if (this.ref) this.channel.socket.unregisterReply(this.ref);
    this.timer = null;
  }
}

export class Channel {
  constructor(topic, params, socket) {
    this.topic = topic;
    this.params = closure(params || {});
    this.socket = socket;
    this.state = "closed";
    this.bindings = [];
    this.bindingRef = 0;
    this.timeout = socket.timeout;
    this.joinedOnce = false;
    this.buffer = [];
    this.errorHooks = [];
    this.closeHooks = [];
    this.joinPush = new Push(this, EVENTS.join, this.params, this.timeout);
    this.rejoinTimer = new Timer(() => {
      if (this.socket.isConnected()) this.rejoin();
    }, rejoinBackoff);
    this.joinPush.receive("ok", () => {
      this.state = "joined";
      this.rejoinTimer.reset();
      for (const push of this.buffer.splice(0)) push.send();
    });
    this.joinPush.receive("error", () => {
      this.state = "errored";
      if (this.socket.isConnected()) this.rejoinTimer.schedule();
    });
    this.joinPush.receive("timeout", () => {
      this.state = "errored";
      this.rejoinTimer.schedule();
    });
  }

  join(timeout = this.timeout) {
    if (this.joinedOnce) throw new Error("tried to join multiple times");
    this.joinedOnce = true;
    this.timeout = timeout;
    this.rejoin();
    return this.joinPush;
  }

  rejoin() {
    if (this.state === "leaving") return;
    this.state = "joining";
    this.joinPush.resend(this.timeout);
  }

  joinRef() {
    return this.joinPush.ref;
  }

  on(event, callback) {
    const ref = ++this.bindingRef;
    this.bindings.push({ event, ref, callback });
    return ref;
  }

  off(event, ref) {
    this.bindings = this.bindings.filter((b) => !(b.event === event && (ref === undefined || ref === b.ref)));
  }

  onError(callback) {
    this.errorHooks.push(callback);
  }

  onClose(callback) {
    this.closeHooks.push(callback);
  }

  push(event, payload, timeout = this.timeout) {
    if (!this.joinedOnce) throw new Error(`tried to push "${event}" to "${this.topic}" before joining`);
    const push = new Push(this, event, payload, timeout);
    if (this.state === "joined" && this.socket.isConnected()) {
      push.send();
    } else {
      // Buffered until joined; the timeout runs from now, as in `phoenix`.
      push.timer = setTimeout(() => push.trigger("timeout", {}), timeout);
      this.buffer.push(push);
    }
    return push;
  }

  leave(timeout = this.timeout) {
    this.rejoinTimer.reset();
    this.joinPush.cancel();
    this.state = "leaving";
    const leave = new Push(this, EVENTS.leave, {}, timeout);
    const done = () => this.closed();
    leave.receive("ok", done).receive("timeout", done);
    if (this.socket.isConnected()) leave.send();
    else done();
    return leave;
  }

  // Left, or closed by the server (`phx_close`, whose payload may say why): not rejoined.
  closed(payload) {
    this.state = "closed";
    this.rejoinTimer.reset();
    this.socket.remove(this);
    for (const hook of this.closeHooks) hook(payload);
  }

  // The socket dropped or the server crashed the channel: rejoin when possible.
  errored(reason) {
    if (this.state === "leaving" || this.state === "closed") return;
    this.state = "errored";
    this.joinPush.cancel();
    for (const hook of this.errorHooks) hook(reason);
    if (this.socket.isConnected()) this.rejoinTimer.schedule();
  }

  socketOpened() {
    this.rejoinTimer.reset();
    if (this.joinedOnce && (this.state === "errored" || this.state === "joining")) this.rejoin();
  }

  dispatch(joinRef, event, payload) {
    // Messages for an earlier join of this topic are stale.
    if (joinRef && joinRef !== this.joinRef()) return;
    if (event === EVENTS.error) return this.errored(payload);
    if (event === EVENTS.close) return this.closed(payload);
    for (const b of this.bindings) {
      if (b.event === event) b.callback(payload);
    }
  }
}

export class Socket {
  constructor(endPoint, opts = {}) {
    this.endPoint = `${endPoint}/websocket`;
    this.params = closure(opts.params || {});
    this.timeout = opts.timeout || DEFAULT_TIMEOUT;
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs || HEARTBEAT_MS;
    this.channels = [];
    this.sendBuffer = [];
    this.replies = new Map();
    this.ref = 0;
    this.conn = null;
    this.hooks = { open: [], close: [], error: [], message: [] };
    this.closeWasClean = false;
    this.pendingHeartbeat = null;
    this.heartbeatTimer = null;
    this.reconnectTimer = new Timer(() => this.teardown(() => this.connect()), socketBackoff);
  }

  endPointURL() {
    const url = new URL(this.endPoint, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const params = { ...this.params(), vsn: VSN };
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    return url.toString();
  }

  makeRef() {
    this.ref += 1;
    return String(this.ref);
  }

  isConnected() {
    return this.conn !== null && this.conn.readyState === WebSocket.OPEN;
  }

  onOpen(callback) {
    this.hooks.open.push(callback);
  }
  onClose(callback) {
    this.hooks.close.push(callback);
  }
  onError(callback) {
    this.hooks.error.push(callback);
  }
  // Every message received, as `{join_ref, ref, topic, event, payload}`.
  onMessage(callback) {
    this.hooks.message.push(callback);
  }

  channel(topic, params) {
    const channel = new Channel(topic, params, this);
    this.channels.push(channel);
    return channel;
  }

  remove(channel) {
    this.channels = this.channels.filter((c) => c !== channel);
  }

  connect() {
    if (this.conn) return;
    this.closeWasClean = false;
    const conn = new WebSocket(this.endPointURL());
    this.conn = conn;
    conn.onopen = () => {
      if (conn !== this.conn) return;
      this.reconnectTimer.reset();
      for (const frame of this.sendBuffer.splice(0)) conn.send(frame);
      this.startHeartbeat();
      for (const hook of this.hooks.open) hook();
      for (const channel of this.channels) channel.socketOpened();
    };
    conn.onerror = (error) => {
      if (conn !== this.conn) return;
      for (const hook of this.hooks.error) hook(error);
    };
    conn.onmessage = (event) => {
      if (conn === this.conn) this.receive(event.data);
    };
    conn.onclose = (event) => {
      if (conn !== this.conn) return;
      this.conn = null;
      this.stopHeartbeat();
      for (const channel of this.channels) channel.errored("socket closed");
      for (const hook of this.hooks.close) hook(event);
      if (!this.closeWasClean) this.reconnectTimer.schedule();
    };
  }

  disconnect(callback, code, reason) {
    this.closeWasClean = true;
    this.reconnectTimer.reset();
    this.teardown(callback, code, reason);
  }

  // Closes the connection; `callback` runs once it is closed (as in `phoenix`), so a
  // reconnect never overlaps the old connection.
  teardown(callback, code, reason) {
    const conn = this.conn;
    this.conn = null;
    this.stopHeartbeat();
    if (!conn) {
      if (callback) callback();
      return;
    }
    let done = false;
    const finish = (event) => {
      if (done) return;
      done = true;
      for (const channel of this.channels) channel.errored("socket closed");
      for (const hook of this.hooks.close) hook(event);
      if (callback) callback();
    };
    conn.onopen = conn.onmessage = conn.onerror = null;
    conn.onclose = finish;
    setTimeout(() => finish({ code: 1006, reason: "close timed out" }), 1000);
    conn.close(code || 1000, reason || "");
  }

  // `{join_ref, ref, topic, event, payload}`, as the stock client's `push` takes it.
  push({ join_ref = null, ref = null, topic, event, payload }) {
    const frame = JSON.stringify([join_ref, ref, topic, event, payload]);
    if (this.isConnected()) this.conn.send(frame);
    else this.sendBuffer.push(frame);
  }

  registerReply(ref, callback) {
    this.replies.set(ref, callback);
  }

  unregisterReply(ref) {
    this.replies.delete(ref);
  }

  startHeartbeat() {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      if (!this.isConnected()) return;
      if (this.pendingHeartbeat) {
        // No answer to the last one: the connection is dead even if the browser has not noticed.
        this.pendingHeartbeat = null;
        const conn = this.conn;
        conn.close(1000, "heartbeat timeout");
        return;
      }
      this.pendingHeartbeat = this.makeRef();
      this.push({ ref: this.pendingHeartbeat, topic: "phoenix", event: "heartbeat", payload: {} });
    }, this.heartbeatIntervalMs);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeatTimer);
    this.pendingHeartbeat = null;
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (!Array.isArray(message) || message.length < 5) return;
    const [joinRef, ref, topic, event, payload] = message;
    if (ref && ref === this.pendingHeartbeat) this.pendingHeartbeat = null;
    for (const hook of this.hooks.message) hook({ join_ref: joinRef, ref, topic, event, payload });
    if (event === EVENTS.reply && ref && this.replies.has(ref)) {
      const callback = this.replies.get(ref);
      this.replies.delete(ref);
      callback(payload.status, payload.response);
      return;
    }
    for (const channel of this.channels) {
      if (channel.topic === topic) channel.dispatch(joinRef, event, payload);
    }
  }
}
