// A small SMSC written with node-smpp (npm "smpp" 0.5.1), a peer capcast did not write.
//
// capcast's integration tests run it on a free loopback port:
//
//   node server.js [--port P] [--system-id ID --password PW] [--receipt-delay MS]
//                  [--receipt-id hex|decimal]
//
// The password may also come from the SMSC_PASSWORD environment variable.
// It prints one JSON object per line on stdout: first {"event":"listening","port":P},
// then one line per PDU it handles. Commands, one per line on stdin:
//
//   throttle N      answer the next N submit_sm / broadcast_sm with ESME_RTHROTTLED
//   drop            destroy every connection now (a network failure)
//   drop-after N    destroy the connection after the next N submit_sm (answered first)
//   quit            exit
//
// It binds (checking the credentials when given), acknowledges submit_sm with
// hexadecimal message ids, sends a delivery receipt (deliver_sm, text form and
// receipted_message_id / message_state TLVs, the id in decimal or hex) when
// registered_delivery asks, and answers the SMPP 5.0 broadcast_sm,
// query_broadcast_sm and cancel_broadcast_sm.
'use strict';

const readline = require('readline');
const smpp = require('smpp');

function option(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = parseInt(option('port', '0'), 10);
const systemId = option('system-id', null);
const password = option('password', process.env.SMSC_PASSWORD || null);
const receiptDelay = parseInt(option('receipt-delay', '50'), 10);
const receiptIdBase = option('receipt-id', 'decimal');

let nextId = 0x1f00;
let throttle = 0;
let dropAfter = null;
const broadcasts = new Map();
const sessions = new Set();

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function text(value) {
  if (value === undefined || value === null) return null;
  if (Buffer.isBuffer(value)) return value.toString('hex');
  if (typeof value === 'object' && 'message' in value) return text(value.message);
  return value;
}

function stamp(date) {
  const p = (n) => ('0' + n).slice(-2);
  return p(date.getUTCFullYear() % 100) + p(date.getUTCMonth() + 1) + p(date.getUTCDate()) +
    p(date.getUTCHours()) + p(date.getUTCMinutes());
}

function throttled(session, pdu) {
  if (throttle <= 0) return false;
  throttle -= 1;
  session.send(pdu.response({command_status: smpp.ESME_RTHROTTLED}));
  emit({event: pdu.command, status: smpp.ESME_RTHROTTLED, sequence: pdu.sequence_number});
  return true;
}

function receipt(session, pdu, id) {
  const shown = receiptIdBase === 'hex' ? id.toString(16) : id.toString(10);
  const submitted = new Date();
  setTimeout(() => {
    if (!sessions.has(session)) return;
    const body = 'id:' + shown + ' sub:001 dlvrd:001 submit date:' + stamp(submitted) +
      ' done date:' + stamp(new Date()) + ' stat:DELIVRD err:000 text:';
    session.deliver_sm({
      source_addr_ton: pdu.dest_addr_ton,
      source_addr_npi: pdu.dest_addr_npi,
      source_addr: pdu.destination_addr,
      dest_addr_ton: pdu.source_addr_ton,
      dest_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.source_addr,
      esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
      data_coding: 0,
      short_message: body,
      receipted_message_id: shown,
      message_state: smpp.MESSAGE_STATE.DELIVERED,
    }, (resp) => emit({event: 'deliver_sm_resp', status: resp.command_status, id: shown}));
    emit({event: 'receipt', id: shown, recipient: pdu.destination_addr});
  }, receiptDelay);
}

const server = smpp.createServer((session) => {
  sessions.add(session);
  let bound = false;
  let submits = 0;
  session.on('close', () => sessions.delete(session));
  session.on('error', (err) => emit({event: 'error', message: String(err && err.message)}));

  for (const command of ['bind_transceiver', 'bind_transmitter', 'bind_receiver']) {
    session.on(command, (pdu) => {
      session.pause();
      const ok = !systemId || (pdu.system_id === systemId && pdu.password === password);
      emit({event: 'bind', command, system_id: pdu.system_id, system_type: pdu.system_type,
            interface_version: pdu.interface_version, ok});
      if (!ok) {
        session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
        session.resume();
        return;
      }
      bound = true;
      session.send(pdu.response({system_id: 'node-smsc'}));
      session.resume();
    });
  }

  session.on('submit_sm', (pdu) => {
    if (!bound) {
      session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
      return;
    }
    if (throttled(session, pdu)) return;
    const id = nextId++;
    session.send(pdu.response({message_id: id.toString(16)}));
    emit({event: 'submit_sm', sequence: pdu.sequence_number, message_id: id.toString(16),
          source_addr: pdu.source_addr, destination_addr: pdu.destination_addr,
          esm_class: pdu.esm_class, data_coding: pdu.data_coding,
          registered_delivery: pdu.registered_delivery, validity_period: text(pdu.validity_period),
          short_message: text(pdu.short_message)});
    if (pdu.registered_delivery & 0x01) receipt(session, pdu, id);
    submits += 1;
    if (dropAfter !== null) {
      dropAfter -= 1;
      if (dropAfter <= 0) {
        dropAfter = null;
        emit({event: 'dropped', after: submits});
        setImmediate(() => session.destroy());
      }
    }
  });

  session.on('broadcast_sm', (pdu) => {
    if (!bound) {
      session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
      return;
    }
    if (throttled(session, pdu)) return;
    const id = 'bc' + (nextId++).toString(16);
    broadcasts.set(id, {state: smpp.MESSAGE_STATE.ENROUTE, areas: pdu.broadcast_area_identifier});
    session.send(pdu.response({message_id: id}));
    emit({event: 'broadcast_sm', message_id: id, sequence: pdu.sequence_number,
          data_coding: pdu.data_coding, priority_flag: pdu.priority_flag,
          areas: (pdu.broadcast_area_identifier || []).map((a) => ({format: a.format, data: text(a.data)})),
          content_type: pdu.broadcast_content_type,
          rep_num: pdu.broadcast_rep_num === undefined ? null : pdu.broadcast_rep_num,
          frequency_interval: pdu.broadcast_frequency_interval || null,
          message_payload: text(pdu.message_payload)});
  });

  session.on('query_broadcast_sm', (pdu) => {
    const known = broadcasts.get(pdu.message_id);
    emit({event: 'query_broadcast_sm', message_id: pdu.message_id, known: !!known});
    if (!known) {
      session.send(pdu.response({command_status: smpp.ESME_RBCASTQUERYFAIL}));
      return;
    }
    session.send(pdu.response({
      message_id: pdu.message_id,
      message_state: known.state,
      broadcast_area_identifier: known.areas,
      broadcast_area_success: 100,
    }));
  });

  session.on('cancel_broadcast_sm', (pdu) => {
    const known = broadcasts.get(pdu.message_id);
    emit({event: 'cancel_broadcast_sm', message_id: pdu.message_id, known: !!known});
    if (!known) {
      session.send(pdu.response({command_status: smpp.ESME_RBCASTCANCELFAIL}));
      return;
    }
    known.state = smpp.MESSAGE_STATE.DELETED;
    session.send(pdu.response());
  });

  session.on('enquire_link', (pdu) => {
    emit({event: 'enquire_link', sequence: pdu.sequence_number});
    session.send(pdu.response());
  });

  session.on('unbind', (pdu) => {
    emit({event: 'unbind'});
    session.send(pdu.response());
    session.close();
  });

  session.on('unknown', (pdu) => {
    emit({event: 'unknown', command_id: pdu.command_id});
    session.send(pdu.response());
  });
});

server.listen(port, '127.0.0.1', () => {
  emit({event: 'listening', port: server.address().port});
});

readline.createInterface({input: process.stdin}).on('line', (line) => {
  const [command, arg] = line.trim().split(/\s+/);
  if (command === 'throttle') {
    throttle = parseInt(arg || '1', 10);
  } else if (command === 'drop') {
    for (const session of sessions) session.destroy();
    emit({event: 'dropped', after: null});
    return;
  } else if (command === 'drop-after') {
    dropAfter = parseInt(arg || '1', 10);
  } else if (command === 'quit') {
    process.exit(0);
  } else {
    emit({event: 'error', message: 'unknown command ' + command});
    return;
  }
  emit({event: 'ok', command, arg: arg || null});
}).on('close', () => process.exit(0));
