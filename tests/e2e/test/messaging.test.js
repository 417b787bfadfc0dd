'use strict';
// One-to-one messaging through the official Web SDK 4.21.1.
// Spec: msync-protocol.md §8 (send/ack, notice/pull, offline sync, meta contents, other
// devices, receipts, REST calls after login), §6.4 (send-ack errors).

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { startServer, sleep } = require('../lib/server');
const {
  WebIM, closeAll, shutdownSdk, expectReject, withTimeout,
} = require('../lib/sdk');
const { login, unique, assertSenderCopy } = require('../lib/fixture');

let srv;

before(async () => {
  srv = await startServer();
  await srv.registerUsers(['alice', 'bob', 'olive', 'oscar', 'hana', 'ivan', 'tess', 'theo', 'pia', 'pam', 'pat', 'pip', 'uma', 'udo', 'olga', 'omar', 'eve', 'eli', 'dana', 'dirk', 'delia', 'rita', 'rolf', 'rhea', 'ross']);
});

afterEach(async () => {
  await closeAll();
});

after(async () => {
  await shutdownSdk();
  if (srv) await srv.stop();
});

const isText = (text) => (m) => m && m.msg === text;

test('online text message alice → bob', { timeout: 30000 }, async () => {
  const a = await login(srv, 'alice');
  const b = await login(srv, 'bob');
  const text = unique('hello bob');

  const r = await withTimeout(a.sendText('bob', text), 15000, 'send');
  assert.equal(typeof r.localMsgId, 'string');
  assert.equal(typeof r.serverMsgId, 'string');
  assert.ok(r.serverMsgId.length > 0 && r.serverMsgId !== '0', `server message id assigned: ${r.serverMsgId}`);
  assert.ok(r.message, 'send() resolves with the message');
  assert.equal(r.message.id, r.serverMsgId);
  assert.equal(typeof r.message.time, 'number');
  assert.ok(Math.abs(r.message.time - Date.now()) < 60000, 'ack timestamp is server time in ms');

  const m = await b.waitFor('onTextMessage', isText(text), 10000);
  assert.equal(m.from, 'alice');
  assert.equal(m.to, 'bob');
  assert.equal(m.type, 'txt');
  assert.equal(m.chatType, 'singleChat');
  assert.equal(m.id, r.serverMsgId, 'receiver sees the id the sender got in the ack');
  assert.equal(typeof m.time, 'number');
  assert.ok(Math.abs(m.time - Date.now()) < 60000, 'time is epoch ms');
  assert.equal(m.onlineState, 1, 'sent while bob was online (ONLINESTATETYPE.ONLINE)');
  // The batch callback onMessage([...]) fires after the per-type callbacks of a pull result.
  await b.waitFor('onMessage', (arr) => Array.isArray(arr) && arr.some(isText(text)), 5000);
  // "onReceivedMessage" on the sender means "the server accepted it".
  assert.ok(a.count('onReceivedMessage', (x) => x && x.mid === r.serverMsgId) >= 1, 'sender got onReceivedMessage {mid}');

  await sleep(800);
  assert.equal(b.count('onTextMessage', isText(text)), 1, 'delivered exactly once');
  assert.equal(a.count('onTextMessage', isText(text)), 0, 'not echoed to the sending device');
});

test('offline message: delivered exactly once at the next login, with offline-sync events', { timeout: 40000 }, async () => {
  const a = await login(srv, 'alice');
  assert.equal(await srv.waitStatus('olive', 'offline', 3000), 'offline');
  const text = unique('while you were away');
  const r = await withTimeout(a.sendText('olive', text), 15000, 'send to offline user');
  assert.ok(r.serverMsgId);
  // The REST offline-message endpoints (rest-api.md §5.13) see it waiting.
  const countPath = srv.appPath('/users/olive/offline_msg_count');
  const statusPath = srv.appPath(`/users/olive/offline_msg_status/${r.serverMsgId}`);
  assert.deepEqual((await srv.call('GET', countPath, { token: true })).data, { olive: 1 });
  assert.deepEqual((await srv.call('GET', statusPath, { token: true })).data, { [r.serverMsgId]: 'undelivered' });

  const o = await login(srv, 'olive');
  const m = await o.waitFor('onTextMessage', isText(text), 10000);
  assert.equal(m.from, 'alice');
  assert.equal(m.to, 'olive');
  assert.equal(m.id, r.serverMsgId);
  assert.equal(m.onlineState, 0, 'sent while olive was offline (ONLINESTATETYPE.OFFLINE)');
  await o.waitFor('onOfflineMessageSyncStart', () => true, 5000);
  await o.waitFor('onOfflineMessageSyncFinish', () => true, 10000);
  const start = o.list('onOfflineMessageSyncStart')[0];
  const msg = o.list('onTextMessage', isText(text))[0];
  assert.ok(start.seq < msg.seq, 'onOfflineMessageSyncStart comes before the offline message');
  assert.equal(o.count('onOfflineMessageSyncStart'), 1);
  assert.equal(o.count('onOfflineMessageSyncFinish'), 1);
  await sleep(1000);
  assert.equal(o.count('onTextMessage', isText(text)), 1, 'exactly once');
  assert.deepEqual((await srv.call('GET', countPath, { token: true })).data, { olive: 0 });
  assert.deepEqual((await srv.call('GET', statusPath, { token: true })).data, { [r.serverMsgId]: 'delivered' });
  await o.close();

  // A later session of the same user must not get it again.
  const o2 = await login(srv, 'olive', { label: 'olive-again' });
  await sleep(2000);
  assert.equal(o2.count('onTextMessage', isText(text)), 0, 'not re-delivered to the next session');
});

test('1000 messages arrive in order, none missing, none doubled', { timeout: 120000 }, async () => {
  const N = 1000;
  const WINDOW = 100; // sends in flight at once (each must be acked within 15 s)
  const a = await login(srv, 'alice');
  const b = await login(srv, 'bob');
  const prefix = unique('seq');
  const text = (i) => `${prefix}#${String(i).padStart(4, '0')}`;
  const serverIds = [];
  for (let base = 0; base < N; base += WINDOW) {
    const batch = [];
    for (let i = base; i < Math.min(N, base + WINDOW); i += 1) batch.push(a.sendText('bob', text(i)));
    const acks = await withTimeout(Promise.all(batch), 30000, `acks for messages ${base}..${base + WINDOW - 1}`);
    for (const ack of acks) serverIds.push(ack.serverMsgId);
  }
  assert.equal(new Set(serverIds).size, N, 'every message got its own server id');

  const mine = (m) => m && typeof m.msg === 'string' && m.msg.startsWith(`${prefix}#`);
  await b.waitForCount('onTextMessage', N, mine, 60000);
  await sleep(1000);
  const got = b.list('onTextMessage', mine).map((e) => Number(e.arg.msg.slice(prefix.length + 1)));
  assert.equal(got.length, N, `exactly ${N} received (got ${got.length})`);
  const expected = Array.from({ length: N }, (_, i) => i);
  const firstBad = got.findIndex((v, i) => v !== i);
  assert.equal(firstBad, -1, `in order; first deviation at position ${firstBad}: got ${got.slice(Math.max(0, firstBad - 2), firstBad + 3)}`);
  assert.deepEqual(got, expected);
  const ids = b.list('onTextMessage', mine).map((e) => e.arg.id);
  assert.deepEqual(ids, serverIds, 'received ids are the acked server ids, in the same order');
});

test('the sender\'s other device receives what the first device sent', { timeout: 30000 }, async () => {
  const a1 = await login(srv, 'alice', { label: 'alice-1' });
  const a2 = await login(srv, 'alice', { label: 'alice-2' });
  const b = await login(srv, 'bob');
  await assertSenderCopy(a1, a2, b, unique('from alice-1'));
});

test('delivery receipt (receiver delivery:true) and read receipt reach the sender', { timeout: 30000 }, async () => {
  const a = await login(srv, 'alice');
  const b = await login(srv, 'bob', { delivery: true });
  const text = unique('receipt me');
  const r = await withTimeout(a.sendText('bob', text), 15000, 'send');
  const m = await b.waitFor('onTextMessage', isText(text), 10000);

  const d = await a.waitFor('onDeliveredMessage', (x) => x && x.mid === r.serverMsgId, 10000);
  assert.equal(d.type, 'delivery');
  assert.equal(d.from, 'bob');
  assert.equal(d.to, 'alice');

  const readMsg = WebIM.message.create({ type: 'read', chatType: 'singleChat', to: 'alice', id: m.id });
  await withTimeout(b.conn.send(readMsg), 15000, 'send read receipt');
  const rd = await a.waitFor('onReadMessage', (x) => x && x.mid === r.serverMsgId, 10000);
  assert.equal(rd.type, 'read');
  assert.equal(rd.from, 'bob');
  assert.equal(rd.to, 'alice');
  await sleep(500);
  assert.equal(a.count('onDeliveredMessage', (x) => x && x.mid === r.serverMsgId), 1, 'one delivery receipt');
  assert.equal(a.count('onReadMessage', (x) => x && x.mid === r.serverMsgId), 1, 'one read receipt');
});

test('what one device reads reaches the user\'s other devices (read and conversation receipts)', { timeout: 30000 }, async () => {
  const a = await login(srv, 'alice');
  const b1 = await login(srv, 'bob', { label: 'bob-1' });
  const b2 = await login(srv, 'bob', { label: 'bob-2' });
  const text = unique('read me on one device');
  const r = await withTimeout(a.sendText('bob', text), 15000, 'send');
  const m = await b1.waitFor('onTextMessage', isText(text), 10000);
  await b2.waitFor('onTextMessage', isText(text), 10000);

  const readMsg = WebIM.message.create({ type: 'read', chatType: 'singleChat', to: 'alice', id: m.id });
  await withTimeout(b1.conn.send(readMsg), 15000, 'send read receipt');
  const rd = await b2.waitFor('onReadMessage', (x) => x && x.mid === r.serverMsgId, 10000);
  assert.equal(rd.from, 'bob');
  assert.equal(rd.to, 'alice');

  const channelMsg = WebIM.message.create({ type: 'channel', chatType: 'singleChat', to: 'alice' });
  await withTimeout(b1.conn.send(channelMsg), 15000, 'send conversation receipt');
  const ch = await b2.waitFor('onChannelMessage', (x) => x && x.from === 'bob' && x.to === 'alice', 10000);
  assert.equal(ch.chatType, 'singleChat');
  await a.waitFor('onChannelMessage', (x) => x && x.from === 'bob' && x.to === 'alice', 10000);
  await sleep(500);
  assert.equal(b1.count('onReadMessage', (x) => x && x.mid === r.serverMsgId), 0, 'not echoed to the device that read');
});

test('a message sent to one device ("bob/<resource>") reaches only that device, shown with that "to"', { timeout: 30000 }, async () => {
  const a = await login(srv, 'alice');
  const b1 = await login(srv, 'bob', { label: 'bob-1' });
  const b2 = await login(srv, 'bob', { label: 'bob-2' });
  const text = unique('only for bob-2');
  const r = await withTimeout(a.sendText(`bob/${b2.resource}`, text), 15000, 'send to one device');
  assert.ok(r.serverMsgId, 'acknowledged');
  const m = await b2.waitFor('onTextMessage', isText(text), 10000);
  assert.equal(m.from, 'alice');
  assert.equal(m.to, `bob/${b2.resource}`);
  // A message for every device still reaches both.
  const all = unique('for every bob');
  await withTimeout(a.sendText('bob', all), 15000, 'send');
  await b1.waitFor('onTextMessage', isText(all), 10000);
  await b2.waitFor('onTextMessage', isText(all), 10000);
  assert.equal(b1.count('onTextMessage', isText(text)), 0, 'not delivered to the other device');
});

test('sending to an unknown user rejects with 204 and the connection stays usable', { timeout: 40000 }, async () => {
  const a = await login(srv, 'alice');
  const err = await expectReject(a.sendText('nobody_e2e', 'anyone there?'), 20000, 'send to unknown user');
  // Send-ack FAIL with a reason containing "username" and "doesn't exist!" → USER_NOT_FOUND.
  assert.equal(err.type, 204, `USER_NOT_FOUND, got ${JSON.stringify(err)}`);
  assert.ok(err.data && typeof err.data.id === 'string', 'data.id = the local message id');
  assert.equal(a.count('onDisconnected'), 0, 'not disconnected');
  assert.equal(a.count('onReconnecting'), 0, 'no forced reconnect (the send was answered)');
  const ok = await withTimeout(a.sendText('bob', unique('after unknown')), 15000, 'send after the failure');
  assert.ok(ok.serverMsgId);
});

test('an oversized message rejects with 511 and the connection stays usable', { timeout: 40000 }, async () => {
  const a = await login(srv, 'alice');
  // Just over the 5 KiB message limit, and far over it (70,000 characters: a frame larger
  // than the message limit must still be answered, not dropped).
  for (const size of [6000, 70000]) {
    const err = await expectReject(a.sendText('bob', 'x'.repeat(size)), 20000, `send ${size} chars`);
    assert.equal(err.type, 511, `${size} chars: "Sorry, data is too large" → 511, got ${JSON.stringify(err)}`);
  }
  assert.equal(a.count('onDisconnected'), 0, 'not disconnected');
  assert.equal(a.count('onReconnecting'), 0, 'no forced reconnect');
  const ok = await withTimeout(a.sendText('bob', unique('after too large')), 15000, 'send after the refusals');
  assert.ok(ok.serverMsgId);
});

test('only the sender recalls a message: the recipient gets onRecallMessage, anyone else is refused', { timeout: 40000 }, async () => {
  const a = await login(srv, 'alice');
  const b = await login(srv, 'bob');
  const text = unique('recall me');
  const sent = await withTimeout(a.sendText('bob', text), 15000, 'send');
  await b.waitFor('onTextMessage', (x) => x && x.msg === text, 10000);

  // bob may not recall alice's message, nor anyone an unknown one.
  const notYours = await expectReject(
    b.conn.recallMessage({ mid: sent.serverMsgId, to: 'alice', chatType: 'singleChat' }), 15000, 'recall by the recipient');
  assert.equal(notYours.type, 603, `"Sorry, You do not have permission" → 603, got ${JSON.stringify(notYours)}`);
  const unknown = await expectReject(
    a.conn.recallMessage({ mid: '1234567', to: 'bob', chatType: 'singleChat' }), 15000, 'recall of an unknown message');
  assert.equal(unknown.type, 1302, `"Sorry, message does not exist" → 1302, got ${JSON.stringify(unknown)}`);
  assert.equal(a.count('onRecallMessage'), 0, 'alice was not told of a recall');

  await withTimeout(a.conn.recallMessage({
    mid: sent.serverMsgId, to: 'bob', chatType: 'singleChat', ext: 'typo',
  }), 15000, 'recall by the sender');
  const r = await b.waitFor('onRecallMessage', (x) => x && x.mid === sent.serverMsgId, 10000);
  assert.equal(r.from, 'alice');
  assert.equal(r.to, 'bob');
  assert.equal(r.ext, 'typo', 'the recall\'s ext (Meta.ext recallMessageExtensionInfo) arrives');
  // The recalled message has left the history.
  const hist = await withTimeout(b.conn.getHistoryMessages({ targetId: 'alice', chatType: 'singleChat', pageSize: 50 }), 15000, 'history');
  assert.ok(!hist.messages.some((m) => m.id === sent.serverMsgId), 'recalled message not in the history');

  // Recalled before an offline recipient logs in: only the recall arrives.
  await b.conn.close();
  await srv.waitStatus('bob', 'offline');
  const offlineText = unique('recalled while offline');
  const offline = await withTimeout(a.sendText('bob', offlineText), 15000, 'send to offline bob');
  await withTimeout(a.conn.recallMessage({ mid: offline.serverMsgId, to: 'bob', chatType: 'singleChat' }), 15000, 'recall while offline');
  const b2 = await login(srv, 'bob');
  await b2.waitFor('onRecallMessage', (x) => x && x.mid === offline.serverMsgId, 10000);
  await sleep(300);
  assert.equal(b2.count('onTextMessage', (x) => x && x.msg === offlineText), 0, 'the recalled text is not delivered');
});

test('custom, cmd and ext-carrying text messages arrive intact', { timeout: 30000 }, async () => {
  const a = await login(srv, 'alice');
  const b = await login(srv, 'bob');

  const ev = unique('e2e_event');
  await withTimeout(a.send({
    type: 'custom', to: 'bob', customEvent: ev, customExts: { color: 'red', size: 'XL' },
  }), 15000, 'send custom');
  const cm = await b.waitFor('onCustomMessage', (x) => x && x.customEvent === ev, 10000);
  assert.equal(cm.type, 'custom');
  assert.equal(cm.from, 'alice');
  assert.equal(cm.to, 'bob');
  assert.deepEqual(cm.customExts, { color: 'red', size: 'XL' });

  const action = unique('e2e_action');
  await withTimeout(a.send({ type: 'cmd', to: 'bob', action }), 15000, 'send cmd');
  const cmd = await b.waitFor('onCmdMessage', (x) => x && x.action === action, 10000);
  assert.equal(cmd.type, 'cmd');
  assert.equal(cmd.from, 'alice');
  assert.equal(cmd.to, 'bob');

  const text = unique('with ext');
  const ext = { str: 'value', num: 42, flag: true, obj: { nested: ['x', 1] } };
  await withTimeout(a.sendText('bob', text, { ext }), 15000, 'send text with ext');
  const tm = await b.waitFor('onTextMessage', isText(text), 10000);
  assert.deepEqual(tm.ext, ext, 'ext survives the server unchanged');
});

test('a message sent with the REST API (POST …/messages/users) reaches the SDK', { timeout: 30000 }, async () => {
  const b = await login(srv, 'bob');
  const text = unique('hi from rest');
  const r = await srv.sendRestMessage({ from: 'admin', to: ['bob'], type: 'txt', body: { msg: text } });
  assert.equal(r.status, 200, `HTTP 200: ${r.text}`);
  assert.ok(r.body && r.body.data && typeof r.body.data.bob === 'string', `data.bob = message id: ${r.text}`);
  const m = await b.waitFor('onTextMessage', isText(text), 10000);
  assert.equal(m.from, 'admin');
  assert.equal(m.to, 'bob');
  assert.equal(m.chatType, 'singleChat');
  assert.equal(m.id, r.body.data.bob, 'the REST answer names the delivered message id');
});

test('getServerConversations() and getHistoryMessages() show the exchange', { timeout: 40000 }, async () => {
  const h = await login(srv, 'hana');
  const i = await login(srv, 'ivan');
  const texts = [unique('h1'), unique('h2'), unique('h3'), unique('i1')];
  const ids = [];
  for (const t of texts.slice(0, 3)) {
    ids.push((await withTimeout(h.sendText('ivan', t), 15000, 'send')).serverMsgId);
    await i.waitFor('onTextMessage', isText(t), 10000);
  }
  ids.push((await withTimeout(i.sendText('hana', texts[3]), 15000, 'send')).serverMsgId);
  await h.waitFor('onTextMessage', isText(texts[3]), 10000);

  const convs = await withTimeout(h.conn.getServerConversations({ pageSize: 20, cursor: '' }), 15000, 'getServerConversations');
  assert.ok(convs && convs.data && Array.isArray(convs.data.conversations), `{data:{conversations}}: ${JSON.stringify(convs)}`);
  const withIvan = convs.data.conversations.find((c) => c.conversationId === 'ivan');
  assert.ok(withIvan, `conversation with ivan listed: ${JSON.stringify(convs.data.conversations)}`);
  assert.equal(withIvan.conversationType, 'singleChat');
  assert.ok(withIvan.lastMessage, 'has lastMessage');
  assert.equal(withIvan.lastMessage.msg, texts[3], 'lastMessage is the latest message');
  assert.equal(withIvan.lastMessage.from, 'ivan');
  assert.equal(withIvan.lastMessage.to, 'hana');
  assert.equal(String(withIvan.lastMessage.id), ids[3]);

  const hist = await withTimeout(h.conn.getHistoryMessages({ targetId: 'ivan', chatType: 'singleChat', pageSize: 20 }), 15000, 'getHistoryMessages');
  assert.ok(hist && Array.isArray(hist.messages), `{messages:[…]}: ${JSON.stringify(hist)}`);
  // Default searchDirection "up": newest first.
  assert.deepEqual(hist.messages.map((m) => m.msg), texts.slice().reverse());
  assert.deepEqual(hist.messages.map((m) => m.id), ids.slice().reverse());
  assert.deepEqual(hist.messages.map((m) => `${m.from}>${m.to}`), ['ivan>hana', 'hana>ivan', 'hana>ivan', 'hana>ivan']);
  assert.equal(hist.isLast, true, 'fewer than pageSize messages: last page');

  const down = await withTimeout(i.conn.getHistoryMessages({
    targetId: 'hana', chatType: 'singleChat', pageSize: 20, searchDirection: 'down',
  }), 15000, 'getHistoryMessages (down)');
  assert.deepEqual(down.messages.map((m) => m.msg), texts, 'searchDirection "down": oldest first');

  const page = await withTimeout(h.conn.getHistoryMessages({ targetId: 'ivan', chatType: 'singleChat', pageSize: 2 }), 15000, 'getHistoryMessages (page 1)');
  assert.deepEqual(page.messages.map((m) => m.msg), [texts[3], texts[2]], 'pageSize honoured');
  assert.equal(page.isLast, false, 'more pages left');
  assert.ok(page.cursor !== undefined && page.cursor !== null && page.cursor !== '', 'cursor for the next page');
  const page2 = await withTimeout(h.conn.getHistoryMessages({
    targetId: 'ivan', chatType: 'singleChat', pageSize: 2, cursor: page.cursor,
  }), 15000, 'getHistoryMessages (page 2)');
  assert.deepEqual(page2.messages.map((m) => m.msg), [texts[1], texts[0]], 'next page continues after the cursor');
});

test('getHistoryMessages() with searchOptions.msgTypes lists only those types, page by page', { timeout: 40000 }, async () => {
  const t = await login(srv, 'tess');
  const texts = [];
  // txt, custom, loc, txt, custom, loc (oldest first).
  for (let k = 0; k < 6; k += 1) {
    if (k % 3 === 0) {
      texts.push(unique(`typed${k}`));
      await withTimeout(t.sendText('theo', texts[texts.length - 1]), 15000, 'send text');
    } else if (k % 3 === 1) {
      await withTimeout(t.send({ type: 'custom', to: 'theo', customEvent: 'ev', customExts: {} }), 15000, 'send custom');
    } else {
      await withTimeout(t.send({ type: 'loc', to: 'theo', lat: 1.5, lng: 2.5, addr: 'here' }), 15000, 'send loc');
    }
  }
  const txt = await withTimeout(t.conn.getHistoryMessages({
    targetId: 'theo', chatType: 'singleChat', pageSize: 20, searchOptions: { msgTypes: ['txt'] },
  }), 15000, 'getHistoryMessages (txt)');
  assert.deepEqual(txt.messages.map((m) => m.type), ['txt', 'txt']);
  assert.deepEqual(txt.messages.map((m) => m.msg), texts.slice().reverse());
  assert.equal(txt.isLast, true);

  const both = await withTimeout(t.conn.getHistoryMessages({
    targetId: 'theo', chatType: 'singleChat', pageSize: 3, searchOptions: { msgTypes: ['custom', 'loc'] },
  }), 15000, 'getHistoryMessages (custom, loc: page 1)');
  assert.deepEqual(both.messages.map((m) => m.type), ['loc', 'custom', 'loc']);
  assert.equal(both.isLast, false, 'one more custom or loc message is left');
  const rest = await withTimeout(t.conn.getHistoryMessages({
    targetId: 'theo', chatType: 'singleChat', pageSize: 3, cursor: both.cursor, searchOptions: { msgTypes: ['custom', 'loc'] },
  }), 15000, 'getHistoryMessages (custom, loc: page 2)');
  assert.deepEqual(rest.messages.map((m) => m.type), ['custom']);
});

test('getServerConversations() pages with the cursor; nothing is pinned', { timeout: 40000 }, async () => {
  const p = await login(srv, 'pia');
  // Three conversations; the newest first: pip, pat, pam.
  for (const peer of ['pam', 'pat', 'pip']) {
    await withTimeout(p.sendText(peer, unique(`to ${peer}`)), 15000, `send to ${peer}`);
  }
  const first = await withTimeout(p.conn.getServerConversations({ pageSize: 2, cursor: '' }), 15000, 'page 1');
  assert.deepEqual(first.data.conversations.map((c) => c.conversationId), ['pip', 'pat']);
  assert.ok(first.data.cursor, `a cursor for the next page: ${JSON.stringify(first.data)}`);
  const second = await withTimeout(p.conn.getServerConversations({ pageSize: 2, cursor: first.data.cursor }), 15000, 'page 2');
  assert.deepEqual(second.data.conversations.map((c) => c.conversationId), ['pam']);
  assert.ok(!second.data.cursor, `no cursor after the last page: ${JSON.stringify(second.data)}`);

  const pinned = await withTimeout(p.conn.getServerPinnedConversations({ pageSize: 20, cursor: '' }), 15000, 'pinned');
  assert.deepEqual(pinned.data.conversations, []);
});

test('unReadCount counts what came after the last channel ack (conversation read)', { timeout: 40000 }, async () => {
  const u = await login(srv, 'uma');
  const d = await login(srv, 'udo');
  const unreadOf = async (who, peer) => {
    const list = await withTimeout(who.conn.getServerConversations({ pageSize: 20, cursor: '' }), 15000, 'getServerConversations');
    const c = list.data.conversations.find((x) => x.conversationId === peer);
    assert.ok(c, `conversation with ${peer}: ${JSON.stringify(list.data)}`);
    return c.unReadCount;
  };
  for (let k = 0; k < 3; k += 1) {
    const text = unique(`unread${k}`);
    await withTimeout(u.sendText('udo', text), 15000, 'send');
    await d.waitFor('onTextMessage', (x) => x && x.msg === text, 10000);
  }
  assert.equal(await unreadOf(d, 'uma'), 3, 'three unread for udo');
  assert.equal(await unreadOf(u, 'udo'), 0, 'nothing unread for the sender');

  const channel = WebIM.message.create({ type: 'channel', chatType: 'singleChat', to: 'uma' });
  await withTimeout(d.conn.send(channel), 15000, 'send channel ack');
  await u.waitFor('onChannelMessage', () => true, 10000);
  assert.equal(await unreadOf(d, 'uma'), 0, 'read after the channel ack');

  const later = unique('later');
  await withTimeout(u.sendText('udo', later), 15000, 'send after the ack');
  await d.waitFor('onTextMessage', (x) => x && x.msg === later, 10000);
  assert.equal(await unreadOf(d, 'uma'), 1, 'one new message unread');
});

test('deliverOnlineOnly: delivered to an online recipient, dropped for an offline one', { timeout: 40000 }, async () => {
  const o = await login(srv, 'olga');
  let m = await login(srv, 'omar');
  const online = unique('online only, omar online');
  await withTimeout(o.sendText('omar', online, { deliverOnlineOnly: true }), 15000, 'send while online');
  await m.waitFor('onTextMessage', (x) => x && x.msg === online, 10000);

  await m.conn.close();
  await srv.waitStatus('omar', 'offline');
  const dropped = unique('online only, omar offline');
  const ack = await withTimeout(o.sendText('omar', dropped, { deliverOnlineOnly: true }), 15000, 'send while offline');
  assert.ok(ack.serverMsgId, 'acknowledged');
  const kept = unique('normal, omar offline');
  await withTimeout(o.sendText('omar', kept), 15000, 'normal send while offline');
  m = await login(srv, 'omar');
  await m.waitFor('onTextMessage', (x) => x && x.msg === kept, 10000);
  await sleep(300);
  assert.equal(m.count('onTextMessage', (x) => x && x.msg === dropped), 0, 'the online-only message was not kept');
});

test('modifyMessage: the sender edits a text; the recipient and the history see the edit', { timeout: 40000 }, async () => {
  const e = await login(srv, 'eve');
  const l = await login(srv, 'eli');
  const first = unique('tpyo');
  const sent = await withTimeout(e.sendText('eli', first), 15000, 'send');
  await l.waitFor('onTextMessage', (x) => x && x.msg === first, 10000);

  const fixed = unique('typo');
  const modified = WebIM.message.create({ type: 'txt', chatType: 'singleChat', to: 'eli', msg: fixed });
  const res = await withTimeout(e.conn.modifyMessage({ messageId: sent.serverMsgId, modifiedMessage: modified }), 15000, 'modifyMessage');
  const edited = res && res.message;
  assert.ok(edited, `resolves with the edited message: ${JSON.stringify(res)}`);
  assert.equal(edited.from, 'eve');
  assert.equal(edited.msg, fixed);
  assert.equal(edited.modifiedInfo && edited.modifiedInfo.operatorId, 'eve');
  assert.equal(edited.modifiedInfo && edited.modifiedInfo.operationCount, 1);

  const got = await l.waitFor('onModifiedMessage', (x) => x && x.id === sent.serverMsgId, 10000);
  assert.equal(got.msg, fixed);
  assert.equal(got.from, 'eve');
  assert.equal(got.chatType, 'singleChat');
  assert.ok(got.time > 0, 'the original send time');
  assert.equal(got.modifiedInfo && got.modifiedInfo.operationCount, 1);

  const hist = await withTimeout(l.conn.getHistoryMessages({ targetId: 'eve', chatType: 'singleChat', pageSize: 10 }), 15000, 'history');
  const inHistory = hist.messages.find((m) => m.id === sent.serverMsgId);
  assert.ok(inHistory, 'still in the history');
  assert.equal(inHistory.msg, fixed, 'the history shows the edited text');
  assert.equal(inHistory.modifiedInfo && inHistory.modifiedInfo.operatorId, 'eve');

  const notYours = await expectReject(
    l.conn.modifyMessage({ messageId: sent.serverMsgId, modifiedMessage: WebIM.message.create({ type: 'txt', chatType: 'singleChat', to: 'eve', msg: 'hijack' }) }),
    15000, 'edit by the recipient');
  assert.equal(notYours.type, 603, `"Sorry, You do not have permission" → 603, got ${JSON.stringify(notYours)}`);
});

test('deleteConversation: gone from the deleter\'s list (and history with deleteRoam) until a new message', { timeout: 40000 }, async () => {
  const d = await login(srv, 'dana');
  const k = await login(srv, 'dirk');
  const before = unique('before delete');
  await withTimeout(d.sendText('dirk', before), 15000, 'send');
  await k.waitFor('onTextMessage', (x) => x && x.msg === before, 10000);
  const peers = async (who) => (await withTimeout(who.conn.getServerConversations({ pageSize: 20, cursor: '' }), 15000, 'list'))
    .data.conversations.map((c) => c.conversationId);

  await withTimeout(d.conn.deleteConversation({ channel: 'dirk', chatType: 'singleChat', deleteRoam: true }), 15000, 'deleteConversation');
  assert.ok(!(await peers(d)).includes('dirk'), 'gone from dana\'s list');
  assert.ok((await peers(k)).includes('dana'), 'still in dirk\'s list');
  const hist = await withTimeout(d.conn.getHistoryMessages({ targetId: 'dirk', chatType: 'singleChat', pageSize: 20 }), 15000, 'history');
  assert.deepEqual(hist.messages, [], 'dana\'s history of it is gone');
  const theirs = await withTimeout(k.conn.getHistoryMessages({ targetId: 'dana', chatType: 'singleChat', pageSize: 20 }), 15000, 'history');
  assert.ok(theirs.messages.some((m) => m.msg === before), 'dirk keeps his history');

  const after = unique('after delete');
  await withTimeout(k.sendText('dana', after), 15000, 'send after');
  await d.waitFor('onTextMessage', (x) => x && x.msg === after, 10000);
  assert.ok((await peers(d)).includes('dirk'), 'back in dana\'s list with the new message');
  const again = await withTimeout(d.conn.getHistoryMessages({ targetId: 'dirk', chatType: 'singleChat', pageSize: 20 }), 15000, 'history');
  assert.deepEqual(again.messages.map((m) => m.msg), [after]);
});

test('removeHistoryMessages by time: the remover\'s older history is gone, the conversation and the peer\'s history stay; by message ID it rejects', { timeout: 40000 }, async () => {
  const r = await login(srv, 'rhea');
  const s = await login(srv, 'ross');
  const old = [unique('old 1'), unique('old 2')];
  for (const text of old) {
    await withTimeout(r.sendText('ross', text), 15000, 'send old');
  }
  await s.waitFor('onTextMessage', isText(old[1]), 10000);
  await sleep(30);
  const cut = Date.now();
  await sleep(30);
  const recent = unique('recent');
  await withTimeout(s.sendText('rhea', recent), 15000, 'send recent');
  await r.waitFor('onTextMessage', isText(recent), 10000);
  const history = async (who, peer) => (await withTimeout(who.conn.getHistoryMessages({ targetId: peer, chatType: 'singleChat', pageSize: 20 }), 15000, 'history'))
    .messages.map((m) => m.msg);

  await withTimeout(r.conn.removeHistoryMessages({ targetId: 'ross', chatType: 'singleChat', beforeTimeStamp: cut }), 15000, 'removeHistoryMessages');
  assert.deepEqual(await history(r, 'ross'), [recent], 'only what came after the cut is left in rhea\'s history');
  const theirs = await history(s, 'rhea');
  for (const text of [...old, recent]) assert.ok(theirs.includes(text), `ross keeps ${text}`);
  const listed = (await withTimeout(r.conn.getServerConversations({ pageSize: 20, cursor: '' }), 15000, 'list'))
    .data.conversations.map((c) => c.conversationId);
  assert.ok(listed.includes('ross'), 'the conversation stays in rhea\'s list');

  const kept = (await withTimeout(s.conn.getHistoryMessages({ targetId: 'rhea', chatType: 'singleChat', pageSize: 20 }), 15000, 'history')).messages;
  const err = await expectReject(r.conn.removeHistoryMessages({ targetId: 'ross', chatType: 'singleChat', messageIds: [kept[0].id] }), 15000, 'removeHistoryMessages(messageIds)');
  assert.ok(err, 'rejected with an error');
  assert.deepEqual(await history(r, 'ross'), [recent], 'nothing else changed');
});

test('deleteConversation on one device reaches the user\'s other devices as onMultiDeviceEvent', { timeout: 40000 }, async () => {
  // delia-3 has been here before (its cursor exists) and is offline during the deletion.
  const d3Device = `e2e${process.pid}delia3`;
  const d3First = await login(srv, 'delia', { label: 'delia-3', deviceId: d3Device });
  const k = await login(srv, 'dirk');
  const first = unique('first to delia');
  await withTimeout(k.sendText('delia', first), 15000, 'send');
  await d3First.waitFor('onTextMessage', (x) => x && x.msg === first, 10000);
  await sleep(500); // its acknowledgement is saved
  await d3First.close();
  const d1 = await login(srv, 'delia', { label: 'delia-1' });
  const d2 = await login(srv, 'delia', { label: 'delia-2' });
  const text = unique('to delia');
  await withTimeout(k.sendText('delia', text), 15000, 'send');
  await d2.waitFor('onTextMessage', (x) => x && x.msg === text, 10000);

  await withTimeout(d1.conn.deleteConversation({ channel: 'dirk', chatType: 'singleChat', deleteRoam: false }), 15000, 'deleteConversation');
  const e = await d2.waitFor('onMultiDeviceEvent', (x) => x && x.operation === 'deleteConversation', 10000);
  assert.equal(e.conversationId, 'dirk');
  assert.equal(e.conversationType, 'singleChat');
  assert.equal(typeof e.timestamp, 'number');
  await sleep(800);
  assert.equal(d1.count('onMultiDeviceEvent'), 0, 'not reported back to the deleting device');
  assert.equal(k.count('onMultiDeviceEvent'), 0, 'the peer is not told');
  // A notice is neither history nor a conversation, nor an offline message.
  const hist = await withTimeout(d2.conn.getHistoryMessages({ targetId: 'delia', chatType: 'singleChat', pageSize: 20 }), 15000, 'history');
  assert.deepEqual(hist.messages, []);
  const list = await withTimeout(d2.conn.getServerConversations({ pageSize: 20, cursor: '' }), 15000, 'list');
  assert.ok(!list.data.conversations.some((c) => c.conversationId === 'delia'), 'no conversation with oneself');

  // A device that was offline is told at its next login.
  const d3 = await login(srv, 'delia', { label: 'delia-3-again', deviceId: d3Device });
  await d3.waitFor('onMultiDeviceEvent', (x) => x && x.operation === 'deleteConversation' && x.conversationId === 'dirk', 10000);
});

test('REST send with routetype ROUTE_ONLINE reaches online recipients only', { timeout: 40000 }, async () => {
  const on = await login(srv, 'rita');
  const both = unique('online only via rest');
  const r = await srv.sendRestMessage({ from: 'admin', to: ['rita', 'rolf'], type: 'txt', body: { msg: both }, routetype: 'ROUTE_ONLINE' });
  assert.equal(r.status, 200, `HTTP 200: ${r.text}`);
  assert.ok(r.body.data.rita && r.body.data.rolf, `an ID for each recipient: ${r.text}`);
  await on.waitFor('onTextMessage', isText(both), 10000);

  const kept = unique('normal via rest');
  await srv.sendRestMessage({ from: 'admin', to: ['rolf'], type: 'txt', body: { msg: kept } });
  const off = await login(srv, 'rolf');
  await off.waitFor('onTextMessage', isText(kept), 10000);
  await sleep(300);
  assert.equal(off.count('onTextMessage', isText(both)), 0, 'rolf was offline: not kept for him');

  const bad = await srv.sendRestMessage({ from: 'admin', to: ['rita'], type: 'txt', body: { msg: 'x' }, routetype: 'SOMETIMES' });
  assert.equal(bad.status, 400, `unknown routetype: ${bad.text}`);
});
