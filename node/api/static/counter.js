/* The merchant counter (/ui/merchant/counter): scan, check, charge, receipt, refund.
 *
 * Everything secret stays in this page: the voucher's seed read from its QR code signs
 * the payment here (tweetnacl), the shop's own key (refunds, customers' authorizations)
 * is kept on this phone sealed with a passphrase (WebCrypto PBKDF2 + AES-GCM). The node
 * receives only signed transactions. A signed transaction is kept in localStorage until
 * its outcome is known and is sent again as the same bytes after a reload or a failure:
 * the ledger is idempotent by transaction id, so a charge never happens twice.
 *
 * The bytes signed are node/crypto.py's: tag || 0x00 || u8(len(chain)) || chain || body,
 * the body being node/ledger/tx.py's canonical msgpack array (node/codec.py).
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("counter-config").textContent);
  var T = config.texts;
  var PENDING = "relance.counter.pending." + config.merchant;
  var RECEIPT = "relance.counter.receipt." + config.merchant;
  var SEALED = "relance.counter.key." + config.merchant;
  var CENTS_MAX = 100000000; // 1 000 000,00 EUR: no counter charge is larger
  var SCAN_EVERY_MS = 150;
  var BLOCK_WAIT_MS = 2000; // accepted but not yet in a block: the same bytes again after this
  var BLOCK_WAITS_MAX = 30;
  var FRAME_WIDTH_MAX = 1280;
  var PBKDF2_ROUNDS = 310000;
  var PASSPHRASE_MIN = 8;
  var NBSP = "\u00a0";
  var utf8 = new TextEncoder();

  // --- bytes ----------------------------------------------------------------------------------

  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    return out;
  }

  function unhex(text) {
    if (!/^([0-9a-fA-F]{2})*$/.test(text)) return null;
    var out = new Uint8Array(text.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
    return out;
  }

  function concat(parts) {
    var n = 0;
    parts.forEach(function (p) { n += p.length; });
    var out = new Uint8Array(n);
    var at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  var B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

  function b32encode(bytes) {
    var out = "", bits = 0, value = 0;
    for (var i = 0; i < bytes.length; i++) {
      value = (value << 8) | bytes[i];
      bits += 8;
      while (bits >= 5) { out += B32[(value >>> (bits - 5)) & 31]; bits -= 5; }
    }
    if (bits > 0) out += B32[(value << (5 - bits)) & 31];
    return out;
  }

  function b32decode(text) {
    var out = [], bits = 0, value = 0;
    for (var i = 0; i < text.length; i++) {
      var v = B32.indexOf(text[i]);
      if (v < 0) return null;
      value = ((value << 5) | v) & 0xffff;
      bits += 5;
      if (bits >= 8) { out.push((value >>> (bits - 8)) & 255); bits -= 8; }
    }
    return new Uint8Array(out);
  }

  function sha256(bytes) {
    return crypto.subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
  }

  // --- canonical msgpack (node/codec.py: arrays, ints, bytes, str, bool, nil) -------------------

  function packInt(n, out) {
    if (typeof n === "number" && !Number.isSafeInteger(n)) throw new Error("not an integer");
    var big = BigInt(n);
    function be(tag, size, v) {
      var b = [tag];
      for (var i = size - 1; i >= 0; i--) b.push(Number((v >> BigInt(8 * i)) & 255n));
      out.push(new Uint8Array(b));
    }
    if (big >= 0n) {
      if (big < 128n) out.push(new Uint8Array([Number(big)]));
      else if (big < 256n) be(0xcc, 1, big);
      else if (big < 65536n) be(0xcd, 2, big);
      else if (big < 4294967296n) be(0xce, 4, big);
      else be(0xcf, 8, big);
    } else {
      if (big >= -32n) out.push(new Uint8Array([Number(big + 256n)]));
      else if (big >= -128n) be(0xd0, 1, big + 256n);
      else if (big >= -32768n) be(0xd1, 2, big + 65536n);
      else if (big >= -2147483648n) be(0xd2, 4, big + 4294967296n);
      else be(0xd3, 8, big + 18446744073709551616n);
    }
  }

  function packLength(n, small, smallMax, tags, out) {
    if (small !== null && n <= smallMax) out.push(new Uint8Array([small | n]));
    else if (tags[0] !== null && n < 256) out.push(new Uint8Array([tags[0], n]));
    else if (n < 65536) out.push(new Uint8Array([tags[1], n >> 8, n & 255]));
    else out.push(new Uint8Array([tags[2], n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255]));
  }

  function packInto(value, out) {
    if (value === null) out.push(new Uint8Array([0xc0]));
    else if (value === true) out.push(new Uint8Array([0xc3]));
    else if (value === false) out.push(new Uint8Array([0xc2]));
    else if (typeof value === "number" || typeof value === "bigint") packInt(value, out);
    else if (typeof value === "string") {
      var s = utf8.encode(value);
      packLength(s.length, 0xa0, 31, [0xd9, 0xda, 0xdb], out);
      out.push(s);
    } else if (value instanceof Uint8Array) {
      packLength(value.length, null, -1, [0xc4, 0xc5, 0xc6], out);
      out.push(value);
    } else if (Array.isArray(value)) {
      packLength(value.length, 0x90, 15, [null, 0xdc, 0xdd], out);
      value.forEach(function (v) { packInto(v, out); });
    } else throw new Error("not a canonical value");
  }

  function pack(value) {
    var out = [];
    packInto(value, out);
    return concat(out);
  }

  function unpack(bytes) {
    var at = 0;
    function take(n) {
      if (at + n > bytes.length) throw new Error("truncated");
      var s = bytes.subarray(at, at + n);
      at += n;
      return s;
    }
    function uint(n) {
      var v = 0n, s = take(n);
      for (var i = 0; i < n; i++) v = (v << 8n) | BigInt(s[i]);
      return v;
    }
    function num(v) { return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v; }
    function items(n, depth) {
      if (depth > 8) throw new Error("nested too deep");
      var list = [];
      for (var i = 0; i < n; i++) list.push(one(depth + 1));
      return list;
    }
    function one(depth) {
      var b = take(1)[0];
      if (b < 0x80) return b;
      if (b >= 0xe0) return b - 256;
      if ((b & 0xf0) === 0x90) return items(b & 15, depth);
      if ((b & 0xe0) === 0xa0) return new TextDecoder("utf-8", { fatal: true }).decode(take(b & 31));
      switch (b) {
        case 0xc0: return null;
        case 0xc2: return false;
        case 0xc3: return true;
        case 0xc4: return take(Number(uint(1))).slice();
        case 0xc5: return take(Number(uint(2))).slice();
        case 0xc6: return take(Number(uint(4))).slice();
        case 0xcc: return num(uint(1));
        case 0xcd: return num(uint(2));
        case 0xce: return num(uint(4));
        case 0xcf: return num(uint(8));
        case 0xd0: return num(BigInt.asIntN(8, uint(1)));
        case 0xd1: return num(BigInt.asIntN(16, uint(2)));
        case 0xd2: return num(BigInt.asIntN(32, uint(4)));
        case 0xd3: return num(BigInt.asIntN(64, uint(8)));
        case 0xd9: return new TextDecoder("utf-8", { fatal: true }).decode(take(Number(uint(1))));
        case 0xda: return new TextDecoder("utf-8", { fatal: true }).decode(take(Number(uint(2))));
        case 0xdc: return items(Number(uint(2)), depth);
        case 0xdd: return items(Number(uint(4)), depth);
        default: throw new Error("not canonical");
      }
    }
    var value = one(0);
    if (at !== bytes.length) throw new Error("trailing bytes");
    if (!equal(pack(value), bytes)) throw new Error("not canonical");
    return value;
  }

  // --- Belgian formats (node/api/fmt.py) ----------------------------------------------------

  function group(n) {
    var digits = String(n), out = [];
    while (digits.length > 3) { out.unshift(digits.slice(-3)); digits = digits.slice(0, -3); }
    out.unshift(digits);
    return out.join(NBSP);
  }

  function money(cents) {
    var sign = cents < 0 ? "-" : "";
    var abs = Math.abs(cents);
    var rest = abs % 100;
    return sign + group(Math.floor(abs / 100)) + "," + (rest < 10 ? "0" : "") + rest + NBSP + "\u20ac";
  }

  function euros(cents) { // for the amount field: "12,50"
    var rest = cents % 100;
    return Math.floor(cents / 100) + "," + (rest < 10 ? "0" : "") + rest;
  }

  function parseEuros(text) {
    var m = /^(\d{1,7})(?:[.,](\d{1,2}))?$/.exec(String(text).replace(/[\s\u00a0\u202f\u20ac]/g, ""));
    if (m === null) return null;
    var cents = Number(m[1]) * 100 + (m[2] === undefined ? 0 : Number((m[2] + "0").slice(0, 2)));
    return cents > 0 && cents <= CENTS_MAX ? cents : null;
  }

  function dateTime(ms) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {
      timeZone: "Europe/Brussels", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).formatToParts(new Date(ms)).forEach(function (p) { parts[p.type] = p.value; });
    return parts.day + "/" + parts.month + "/" + parts.year + " " + parts.hour + ":" + parts.minute;
  }

  function isoDay(text) { // "2026-03-31" -> "31/03/2026"
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
    return m === null ? "" : m[3] + "/" + m[2] + "/" + m[1];
  }

  function say(key, values) {
    var text = T[key] || key;
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(values[k]); });
    return text;
  }

  // --- codes: RLV1 vouchers, RLA1 authorizations, RLK1 sealed shop keys (wallets/voucher.py) --

  function CodeError(key) { this.key = key; }

  // SCHEME:CHAIN:BODY:CHECK, one of ``schemes``, checked: its scheme and its body's bytes.
  function codeBody(text, schemes, notCode) {
    var value = String(text).trim().toUpperCase();
    var parts = value.split(":");
    if (value.length > 1000 || parts.length !== 4 || schemes.indexOf(parts[0]) < 0) {
      return Promise.reject(new CodeError(notCode));
    }
    var head = parts.slice(0, 3).join(":");
    return sha256(utf8.encode(head)).then(function (d) {
      if (b32encode(d).slice(0, 4) !== parts[3]) throw new CodeError("err.check");
      if (parts[1] !== config.chain_id.toUpperCase()) throw new CodeError("err.chain");
      var body = b32decode(parts[2]);
      if (body === null) throw new CodeError("err.check");
      return { scheme: parts[0], body: body };
    });
  }

  function parseCode(text) {
    return codeBody(text, ["RLV1", "RLA1"], "err.not_code").then(function (code) {
      var body = code.body;
      if (code.scheme === "RLV1") {
        if (body.length !== 32) throw new CodeError("err.check");
        return { kind: "voucher", seed: body };
      }
      var outer, auth;
      try {
        outer = unpack(body);
        auth = unpack(outer[0]);
      } catch (e) {
        throw new CodeError("err.check");
      }
      if (!Array.isArray(outer) || outer.length !== 2 || !(outer[0] instanceof Uint8Array) ||
          !(outer[1] instanceof Uint8Array) || !Array.isArray(auth) || auth.length !== 7 ||
          auth[0] !== config.tx_version) {
        throw new CodeError("err.check");
      }
      return {
        kind: "authorization", bytes: outer[0], signature: outer[1], value: auth,
        holder: auth[1], campaign: auth[2], merchant: auth[3], max: Number(auth[4]),
        expires: Number(auth[5]),
      };
    });
  }

  // --- signing (node/crypto.py, node/ledger/tx.py) --------------------------------------------

  function signingBytes(domain, body) {
    var chain = utf8.encode(config.chain_id);
    return concat([utf8.encode(domain), new Uint8Array([0, chain.length]), chain, body]);
  }

  function signTx(keyPair, sequence, kind, fields) {
    var body = pack([config.tx_version, kind, config.chain_id, keyPair.publicKey, sequence].concat(fields));
    var signature = nacl.sign.detached(signingBytes(config.domains.tx, body), keyPair.secretKey);
    return sha256(body).then(function (id) {
      return { wire: hex(pack([body, signature])), tx_id: hex(id) };
    });
  }

  // --- the shop's key, sealed on this phone -------------------------------------------------

  function wrapKey(passphrase, salt) {
    return crypto.subtle.importKey("raw", utf8.encode(passphrase), "PBKDF2", false, ["deriveKey"])
      .then(function (base) {
        return crypto.subtle.deriveKey(
          { name: "PBKDF2", hash: "SHA-256", salt: salt, iterations: PBKDF2_ROUNDS },
          base, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
      });
  }

  // A key exported by `relance-wallet key export` (wallets/voucher.py SealedKey):
  // RLK1:CHAIN:base32(salt 16 | nonce 24 | secretbox(seed) 48):CHECK, opened by the one-time
  // code printed beside its QR code: PBKDF2-SHA-256(code, salt) is the box's key.
  function isSealedKey(text) { return /^\s*RLK1:/i.test(String(text)); }

  function openSealedKey(text, code) {
    return codeBody(text, ["RLK1"], "err.check").then(function (sealed) {
      var body = sealed.body;
      if (body.length !== 16 + 24 + 48) throw new CodeError("err.check");
      var typed = String(code).toUpperCase().replace(/[\s-]/g, "");
      return crypto.subtle.importKey("raw", utf8.encode(typed), "PBKDF2", false, ["deriveBits"])
        .then(function (base) {
          return crypto.subtle.deriveBits(
            { name: "PBKDF2", hash: "SHA-256", salt: body.slice(0, 16), iterations: PBKDF2_ROUNDS },
            base, 256);
        }).then(function (bits) {
          var seed = nacl.secretbox.open(body.slice(40), body.slice(16, 40), new Uint8Array(bits));
          if (seed === null) throw new CodeError("key.bad_code");
          return seed;
        });
    });
  }

  function sealKey(seed, passphrase) {
    if (seed === null || seed.length !== 32) return Promise.reject(new CodeError("key.wrong"));
    var pair = nacl.sign.keyPair.fromSeed(seed);
    if (hex(pair.publicKey) !== config.merchant) return Promise.reject(new CodeError("key.wrong"));
    if (passphrase.length < PASSPHRASE_MIN) return Promise.reject(new CodeError("key.bad_passphrase"));
    var salt = crypto.getRandomValues(new Uint8Array(16));
    var iv = crypto.getRandomValues(new Uint8Array(12));
    return wrapKey(passphrase, salt).then(function (key) {
      return crypto.subtle.encrypt({ name: "AES-GCM", iv: iv }, key, seed);
    }).then(function (sealed) {
      localStorage.setItem(SEALED, JSON.stringify(
        { salt: hex(salt), iv: hex(iv), sealed: hex(new Uint8Array(sealed)) }));
    });
  }

  function unsealKey(passphrase) {
    var kept = JSON.parse(localStorage.getItem(SEALED) || "null");
    if (kept === null) return Promise.reject(new CodeError("key.needed"));
    return wrapKey(passphrase, unhex(kept.salt)).then(function (key) {
      return crypto.subtle.decrypt({ name: "AES-GCM", iv: unhex(kept.iv) }, key, unhex(kept.sealed));
    }).then(function (seed) {
      var pair = nacl.sign.keyPair.fromSeed(new Uint8Array(seed));
      if (hex(pair.publicKey) !== config.merchant) throw new CodeError("key.wrong");
      return pair;
    }, function (error) {
      throw error instanceof CodeError ? error : new CodeError("key.bad_passphrase");
    });
  }

  // --- the node's API ------------------------------------------------------------------------

  function Unreachable() {}

  function getJson(path) {
    return fetch(path, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Unreachable();
      return r.json();
    }, function () { throw new Unreachable(); });
  }

  function submit(wire) {
    return fetch("/v1/transactions?wait=true", {
      method: "POST", headers: { "Content-Type": "application/json" }, cache: "no-store",
      body: JSON.stringify({ tx: wire }),
    }).then(function (r) {
      if (r.status >= 500 || r.status === 429) throw new Unreachable();
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    }, function () { throw new Unreachable(); });
  }

  function balanceOf(account, campaign) {
    var cents = 0;
    (account.balances || []).forEach(function (b) { if (b.campaign === campaign) cents += b.cents; });
    return cents;
  }

  // --- the page -------------------------------------------------------------------------------

  var root = document.querySelector(".counter");
  var $ = function (id) { return document.getElementById(id); };
  var field = function (name) { return document.querySelector('[data-testid="' + name + '"]'); };
  var STEPS = ["step-scan", "step-check", "step-sending", "step-receipt"];
  var current = null; // what was scanned and checked
  var stream = null;
  var busy = false;

  function show(step) {
    STEPS.forEach(function (id) { $(id).hidden = id !== "step-" + step; });
    root.setAttribute("data-state", step);
  }

  function showError(text, retry) {
    $("error-text").textContent = text;
    $("error").hidden = false;
    $("retry").hidden = !retry;
    root.setAttribute("data-error", "yes");
  }

  function clearError() {
    $("error").hidden = true;
    $("retry").hidden = true;
    root.removeAttribute("data-error");
  }

  function fail(error) {
    busy = false;
    if (error instanceof CodeError) showError(say(error.key));
    else if (error instanceof Unreachable) showError(say("err.unreachable"));
    else showError(say("err.other", { detail: String(error && error.message || error) }));
  }

  // scanning
  function stopCamera() {
    if (stream !== null) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    $("camera-box").hidden = true;
    $("scan-start").hidden = false;
  }

  function startCamera() {
    clearError();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError(say("err.camera"));
      return;
    }
    navigator.mediaDevices.getUserMedia({
      audio: false, video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 } },
    }).then(function (s) {
      stream = s;
      var video = $("camera");
      video.srcObject = s;
      $("camera-box").hidden = false;
      $("scan-start").hidden = true;
      return video.play().then(function () { look(video); });
    }).catch(function () { stopCamera(); showError(say("err.camera")); });
  }

  var canvas = document.createElement("canvas");

  function look(video) {
    if (stream === null) return;
    if (video.readyState >= 2 && video.videoWidth > 0) {
      var scale = Math.min(1, FRAME_WIDTH_MAX / video.videoWidth);
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      var context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      var image = context.getImageData(0, 0, canvas.width, canvas.height);
      var found = jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
      if (found && found.data) {
        stopCamera();
        read(found.data);
        return;
      }
    }
    setTimeout(function () { look(video); }, SCAN_EVERY_MS);
  }

  // checking what was scanned
  function read(text) {
    clearError();
    if (isSealedKey(text)) { takeSealedKey(text); return; }
    parseCode(text).then(function (code) {
      return code.kind === "voucher" ? checkVoucher(code) : checkAuthorization(code);
    }).then(function (checked) {
      current = checked;
      $("check-title").textContent = say(checked.kind === "voucher" ? "voucher" : "authorization");
      field("campaign").textContent = checked.campaignName;
      field("valid-until").textContent = checked.lastDay;
      field("limit-label").textContent = say(checked.kind === "voucher" ? "remaining" : "authorized_max");
      field("remaining").textContent = money(checked.limit);
      $("auth-pass").hidden = checked.kind === "voucher";
      $("amount").value = "";
      $("confirm").disabled = false;
      show("check");
      $("amount").focus();
    }).catch(function (error) { show("scan"); fail(error); });
  }

  function campaignOf(code) {
    return getJson("/v1/campaigns/" + encodeURIComponent(code)).then(function (c) {
      if (c.closed) throw new CodeError("err.CAMPAIGN_CLOSED");
      if (!c.active) throw new CodeError("err.CAMPAIGN_NOT_ACTIVE");
      return c;
    });
  }

  function checkVoucher(code) {
    var pair = nacl.sign.keyPair.fromSeed(code.seed);
    return getJson("/v1/accounts/" + hex(pair.publicKey)).then(function (account) {
      var best = null;
      (account.balances || []).forEach(function (b) {
        if (b.campaign && b.cents > 0 && (best === null || b.cents > best.cents)) best = b;
      });
      if (best === null) throw new CodeError("err.empty");
      return campaignOf(best.campaign).then(function (c) {
        return {
          kind: "voucher", keyPair: pair, holder: hex(pair.publicKey), campaign: best.campaign,
          campaignName: c.name, lastDay: isoDay(c.last_valid_day), limit: best.cents,
          balance: best.cents, sequence: account.sequence,
        };
      });
    });
  }

  function checkAuthorization(code) {
    var signed = signingBytes(config.domains.authorization, code.bytes);
    if (!nacl.sign.detached.verify(signed, code.signature, code.holder)) {
      return Promise.reject(new CodeError("err.BAD_AUTHORIZATION"));
    }
    if (code.merchant.length !== 0 && hex(code.merchant) !== config.merchant) {
      return Promise.reject(new CodeError("err.BAD_AUTHORIZATION"));
    }
    if (code.expires <= Date.now()) return Promise.reject(new CodeError("err.AUTHORIZATION_EXPIRED"));
    return getJson("/v1/accounts/" + hex(code.holder)).then(function (account) {
      var balance = balanceOf(account, code.campaign);
      if (balance <= 0) throw new CodeError("err.empty");
      return campaignOf(code.campaign).then(function (c) {
        return {
          kind: "authorization", code: code, holder: hex(code.holder), campaign: code.campaign,
          campaignName: c.name, lastDay: isoDay(c.last_valid_day),
          limit: Math.min(code.max, balance), balance: balance,
        };
      });
    });
  }

  // charging: sign once, keep, send (again) the same bytes
  function keep(pending) { localStorage.setItem(PENDING, JSON.stringify(pending)); }
  function kept() { return JSON.parse(localStorage.getItem(PENDING) || "null"); }

  function confirm(event) {
    event.preventDefault();
    if (busy) return; // a second tap while the first is on its way
    var waiting = kept();
    if (waiting !== null) { send(waiting); return; } // never signed again
    clearError();
    var cents = parseEuros($("amount").value);
    if (cents === null) { showError(say("err.amount")); return; }
    if (cents > current.limit) {
      showError(current.kind === "voucher" ? say("err.too_much", { balance: money(current.balance) })
        : say("err.AUTHORIZATION_EXCEEDED", { balance: money(current.limit) }));
      return;
    }
    busy = true;
    $("confirm").disabled = true;
    var signing;
    if (current.kind === "voucher") {
      signing = signTx(current.keyPair, current.sequence, config.kinds.pay,
        [current.campaign, unhex(config.merchant), cents, ""]);
    } else {
      var code = current.code;
      signing = unsealKey($("charge-passphrase").value).then(function (pair) {
        return getJson("/v1/accounts/" + config.merchant).then(function (me) {
          return signTx(pair, me.sequence, config.kinds.pay_authorized,
            [code.value, code.signature, cents, ""]);
        });
      });
    }
    var checked = current;
    signing.then(function (signed) {
      var pending = {
        what: "charge", wire: signed.wire, tx_id: signed.tx_id, amount: cents,
        campaign: checked.campaign, holder: checked.holder, limit: checked.limit,
      };
      keep(pending); // before it leaves this phone
      send(pending);
    }).catch(function (error) { $("confirm").disabled = false; fail(error); });
  }

  function send(pending) {
    busy = true;
    clearError();
    show("sending");
    submit(pending.wire).then(function (answer) {
      if (answer.status === 200 && answer.body.accepted && typeof answer.body.height === "number") {
        return settled(pending, answer.body.height);
      }
      if (answer.status < 300 && answer.body.accepted) { // waiting for its block: ask again
        pending.waits = (pending.waits || 0) + 1;
        if (pending.waits > BLOCK_WAITS_MAX) throw new Unreachable();
        keep(pending);
        setTimeout(function () { send(pending); }, BLOCK_WAIT_MS);
        return null;
      }
      localStorage.removeItem(PENDING); // refused: nothing was taken, a new try signs anew
      busy = false;
      var result = answer.body.result;
      var left = answer.body.available_cents;
      var key = "err." + result;
      var text = T[key] !== undefined
        ? say(key, { balance: money(typeof left === "number" ? left : pending.limit) })
        : say("err.other", { detail: answer.body.detail || answer.body.title || answer.status });
      show(pending.what === "charge" ? "scan" : "receipt");
      showError(text);
      return null;
    }).catch(function () { // unreachable, or no block in time: the bytes stay kept
      busy = false;
      show(pending.what === "charge" ? "sending" : "receipt");
      showError(say("err.unreachable"), true);
    });
  }

  function settled(pending, height) {
    var when = getJson("/v1/blocks/" + height).then(function (block) {
      return block.time_ms;
    }, function () { return Date.now(); });
    var balance = getJson("/v1/accounts/" + pending.holder).then(function (account) {
      return balanceOf(account, pending.campaign);
    }, function () { return null; });
    return Promise.all([balance, when]).then(function (known) {
      var left = known[0], at = known[1];
      localStorage.removeItem(PENDING);
      busy = false;
      var receipt = JSON.parse(sessionStorage.getItem(RECEIPT) || "null");
      if (pending.what === "charge") {
        receipt = {
          amount: pending.amount, shop: config.shop, at: at, tx_id: pending.tx_id,
          left: left, holder: pending.holder, campaign: pending.campaign, refunded: 0,
        };
      } else if (receipt !== null) {
        receipt.refunded += pending.amount;
        receipt.left = left;
      }
      sessionStorage.setItem(RECEIPT, JSON.stringify(receipt));
      showReceipt(receipt);
    });
  }

  function showReceipt(receipt) {
    field("receipt-amount").textContent = money(receipt.amount);
    field("receipt-shop").textContent = receipt.shop;
    field("receipt-time").textContent = dateTime(receipt.at);
    field("receipt-tx").textContent = receipt.tx_id;
    field("receipt-left").textContent = receipt.left === null ? "?" : money(receipt.left);
    $("refunded").hidden = receipt.refunded === 0;
    $("refunded").textContent = say("refund.done") + " " + money(receipt.refunded);
    $("refund-amount").value = "";
    $("refund-passphrase").value = "";
    show("receipt");
  }

  function refund(event) {
    event.preventDefault();
    if (busy) return;
    var waiting = kept();
    if (waiting !== null) { send(waiting); return; }
    clearError();
    var receipt = JSON.parse(sessionStorage.getItem(RECEIPT) || "null");
    if (receipt === null) return;
    var cents = parseEuros($("refund-amount").value);
    if (cents === null || cents > receipt.amount - receipt.refunded) {
      showError(say("err.REFUND_EXCEEDS_PAYMENTS"));
      return;
    }
    busy = true;
    unsealKey($("refund-passphrase").value).then(function (pair) {
      return getJson("/v1/accounts/" + config.merchant).then(function (me) {
        return signTx(pair, me.sequence, config.kinds.refund,
          [unhex(receipt.holder), receipt.campaign, cents, ""]);
      });
    }).then(function (signed) {
      var pending = {
        what: "refund", wire: signed.wire, tx_id: signed.tx_id, amount: cents,
        campaign: receipt.campaign, holder: receipt.holder, limit: receipt.amount,
      };
      keep(pending);
      send(pending);
    }).catch(fail);
  }

  function next() {
    sessionStorage.removeItem(RECEIPT);
    current = null;
    clearError();
    show("scan");
    $("scan-start").focus();
  }

  function showKeyState() {
    var present = localStorage.getItem(SEALED) !== null;
    $("key-state").textContent = say(present ? "key.present" : "key.absent");
    $("key-forget").hidden = !present;
  }

  function saveKey(event) {
    event.preventDefault();
    clearError();
    var typed = $("key-seed").value;
    var seed = isSealedKey(typed) ? openSealedKey(typed, $("key-code").value)
      : Promise.resolve(unhex(typed.trim()));
    seed.then(function (bytes) {
      return sealKey(bytes, $("key-passphrase").value);
    }).then(function () {
      $("key-seed").value = "";
      $("key-code").value = "";
      $("key-passphrase").value = "";
      showKeyState();
    }).catch(fail);
  }

  function takeSealedKey(text) { // scanned or typed where a voucher goes: to the key's form
    show("scan");
    $("key-box").open = true;
    $("key-seed").value = String(text).trim();
    $("key-state").textContent = say("key.scanned");
    $("key-code").focus();
  }

  $("scan-start").addEventListener("click", startCamera);
  $("scan-stop").addEventListener("click", stopCamera);
  $("typed-form").addEventListener("submit", function (e) { e.preventDefault(); read($("typed").value); });
  $("charge-all").addEventListener("click", function () { if (current) $("amount").value = euros(current.limit); });
  $("charge-form").addEventListener("submit", confirm);
  $("cancel").addEventListener("click", next);
  $("retry").addEventListener("click", function () {
    var p = kept();
    if (p !== null) { p.waits = 0; send(p); }
  });
  $("refund-form").addEventListener("submit", refund);
  $("next").addEventListener("click", next);
  $("key-form").addEventListener("submit", saveKey);
  $("key-forget").addEventListener("click", function () { localStorage.removeItem(SEALED); showKeyState(); });

  // for the tests: the page's own encoder and signer, checked against node/codec.py
  window.relanceCounter = { pack: pack, unpack: unpack, signTx: signTx, hex: hex, unhex: unhex };

  showKeyState();
  var waiting = kept();
  if (waiting !== null) { // a reload in the middle of a charge: the same bytes again
    show("sending");
    $("sending-text").textContent = say("resuming");
    send(waiting);
  } else {
    var last = JSON.parse(sessionStorage.getItem(RECEIPT) || "null");
    if (last !== null) showReceipt(last);
    else show("scan");
  }
})();
