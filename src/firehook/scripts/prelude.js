// The JavaScript side of the host APIs (SPEC §4.2–4.4), evaluated once after Underscore; the
// resulting heap is snapshotted and every run starts from a fresh copy of it.
//
// The host is one function, __fh("op\narg") -> string, taken off the global object here so
// scripts only reach it through these wrappers. Most operations answer '{"v": value}' or
// '{"e": [errorName, message]}'. Nothing here is trusted by the host: a script can replace any
// of it, but only within its own run; the host checks every argument itself.
(function (global) {
  'use strict';
  var host = global.__fh;
  delete global.__fh;

  // Primordials, captured before any script can replace them.
  var jsonParse = JSON.parse;
  var jsonStringify = JSON.stringify;
  var indirectEval = global.eval;
  var StringCtor = String;
  var ErrorCtor = Error;
  var TypeErrorCtor = TypeError;
  var RangeErrorCtor = RangeError;
  var MapCtor = Map;
  var mapSet = Map.prototype.set;
  var mapHas = Map.prototype.has;
  var isArray = Array.isArray;
  var fromCharCode = String.fromCharCode;
  var ArrayBufferCtor = ArrayBuffer;
  var isView = ArrayBuffer.isView;
  var Uint8ArrayCtor = Uint8Array;
  var defineProperty = Object.defineProperty;
  var PromiseCtor = Promise;
  var promiseThen = Promise.prototype.then;
  var call = Function.prototype.call;
  var bindCall = function (fn) { return call.bind(fn); };
  var mapSetCall = bindCall(mapSet);
  var mapHasCall = bindCall(mapHas);
  var promiseThenCall = bindCall(promiseThen);

  var ERRORS = { TypeError: TypeErrorCtor, RangeError: RangeErrorCtor };

  // One string crosses each way: "op\narg" in, the answer out.
  function hostRaw(op, arg) {
    return host(arg === undefined ? op : op + '\n' + arg);
  }

  function hostCall(op, arg) {
    var answer = jsonParse(hostRaw(op, arg));
    if (answer.e) {
      var Ctor = ERRORS[answer.e[0]] || ErrorCtor;
      throw new Ctor(answer.e[1]);
    }
    return answer.v;
  }

  // ---- console -----------------------------------------------------------------------------
  var logLimit = 1024 * 1024;

  function render(value) {
    if (typeof value === 'string') return value;
    if (value === undefined) return 'undefined';
    if (typeof value === 'function') return '[Function' + (value.name ? ': ' + value.name : ' (anonymous)') + ']';
    if (typeof value === 'symbol' || typeof value === 'bigint') return StringCtor(value);
    if (value !== null && typeof value === 'object') {
      if (value instanceof ErrorCtor) return StringCtor(value);
      try {
        var text = jsonStringify(value);
        return text === undefined ? StringCtor(value) : text;
      } catch (e) {
        return StringCtor(value);
      }
    }
    return StringCtor(value);
  }

  var logCut = false;

  function logLine(args) {
    // Once the host has cut the log, later lines are dropped here, cheaply.
    if (logCut) return;
    var line = '';
    for (var i = 0; i < args.length; i++) {
      line += (i ? ' ' : '') + render(args[i]);
      // Never ship more than the log can keep across the host boundary.
      if (line.length > logLimit) { line = line.slice(0, logLimit + 1); break; }
    }
    if (hostRaw('log', line) === 'cut') logCut = true;
  }

  var consoleObject = {};
  ['log', 'info', 'warn', 'error', 'debug', 'trace'].forEach(function (name) {
    consoleObject[name] = function () { logLine(arguments); };
  });

  // ---- storage -----------------------------------------------------------------------------
  function storageKey(key) {
    if (typeof key !== 'string' && typeof key !== 'number') {
      throw new TypeErrorCtor('storage keys must be strings');
    }
    return StringCtor(key);
  }

  function encodeValue(value) {
    var type = typeof value;
    if (type === 'string' || type === 'boolean') return jsonStringify(value);
    if (type === 'number') {
      if (value !== value || value === Infinity || value === -Infinity) {
        throw new TypeErrorCtor('storage values must be finite numbers');
      }
      return jsonStringify(value);
    }
    throw new TypeErrorCtor(
      'storage values must be strings, numbers or booleans; ' +
      'use JSON.stringify(value) to store an object or an array');
  }

  var storage = {
    get: function (key) {
      var encoded = hostCall('storage.get', storageKey(key));
      return encoded === null ? null : jsonParse(encoded);
    },
    set: function (key, value) {
      hostCall('storage.set', jsonStringify([storageKey(key), encodeValue(value)]));
    },
    remove: function (key) {
      hostCall('storage.remove', storageKey(key));
    },
    clear: function () {
      hostCall('storage.clear', '');
    }
  };

  function requireModule(name) {
    if (name === 'storage') return storage;
    throw new ErrorCtor("Cannot find module '" + StringCtor(name) + "'");
  }

  // ---- crypto ------------------------------------------------------------------------------
  // Strings returned by digest() without an encoding are binary strings (one byte per
  // character); remembering them lets a later createHmac(alg, thatString) use the bytes, as
  // AWS SigV4 key derivation needs, while any other string is UTF-8 as in Node.
  var binaryStrings = new MapCtor();

  function bytesOf(data) {
    if (typeof data === 'string') {
      return [mapHasCall(binaryStrings, data) ? 'latin1' : 'utf8', data];
    }
    var view = null;
    if (data instanceof ArrayBufferCtor) view = new Uint8ArrayCtor(data);
    else if (isView(data)) view = new Uint8ArrayCtor(data.buffer, data.byteOffset, data.byteLength);
    if (view !== null) {
      var text = '';
      for (var i = 0; i < view.length; i += 8192) {
        text += fromCharCode.apply(null, view.subarray(i, i + 8192));
      }
      return ['latin1', text];
    }
    if (data === undefined || data === null) {
      throw new TypeErrorCtor('The "data" argument must be a string, a Buffer or a typed array');
    }
    return ['utf8', StringCtor(data)];
  }

  var ALGORITHMS = { sha256: 1, sha1: 1, md5: 1, sha512: 1, sha384: 1, sha224: 1 };

  function algorithm(name) {
    var alg = StringCtor(name).toLowerCase().replace('-', '');
    if (!ALGORITHMS[alg]) throw new ErrorCtor('Digest method not supported: ' + StringCtor(name));
    return alg;
  }

  function makeDigester(op, alg, key) {
    var parts = [];
    var done = false;
    return {
      update: function (data) {
        if (done) throw new ErrorCtor('Digest already called');
        parts.push(bytesOf(data));
        return this;
      },
      digest: function (format) {
        if (done) throw new ErrorCtor('Digest already called');
        done = true;
        var fmt = format === undefined || format === null ? '' : StringCtor(format);
        var request = op === 'hmac' ? [alg, key, parts, fmt] : [alg, parts, fmt];
        var result = hostCall(op, jsonStringify(request));
        if (fmt === '' || fmt === 'binary' || fmt === 'latin1') mapSetCall(binaryStrings, result, true);
        return result;
      }
    };
  }

  var crypto = {
    createHmac: function (alg, key) {
      return makeDigester('hmac', algorithm(alg), bytesOf(key));
    },
    createHash: function (alg) {
      return makeDigester('hash', algorithm(alg), null);
    }
  };

  // ---- fetch -------------------------------------------------------------------------------
  function headerPairs(headers) {
    var pairs = [];
    if (headers === undefined || headers === null) return pairs;
    if (typeof headers.forEach === 'function' && !isArray(headers) && headers.__fhHeaders) {
      headers.forEach(function (value, name) { pairs.push([StringCtor(name), StringCtor(value)]); });
      return pairs;
    }
    if (isArray(headers)) {
      for (var i = 0; i < headers.length; i++) {
        pairs.push([StringCtor(headers[i][0]), StringCtor(headers[i][1])]);
      }
      return pairs;
    }
    for (var name in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, name)) {
        pairs.push([name, StringCtor(headers[name])]);
      }
    }
    return pairs;
  }

  function Headers(pairs) {
    var list = [];
    for (var i = 0; i < pairs.length; i++) list.push([StringCtor(pairs[i][0]).toLowerCase(), pairs[i][1]]);
    defineProperty(this, '__fhHeaders', { value: list });
  }
  Headers.prototype.get = function (name) {
    var key = StringCtor(name).toLowerCase();
    var found = [];
    var list = this.__fhHeaders;
    for (var i = 0; i < list.length; i++) if (list[i][0] === key) found.push(list[i][1]);
    return found.length ? found.join(', ') : null;
  };
  Headers.prototype.has = function (name) { return this.get(name) !== null; };
  Headers.prototype.forEach = function (callback, thisArg) {
    var list = this.__fhHeaders;
    var seen = {};
    for (var i = 0; i < list.length; i++) {
      var key = list[i][0];
      if (seen[key]) continue;
      seen[key] = true;
      callback.call(thisArg, this.get(key), key, this);
    }
  };
  Headers.prototype.entries = function () {
    var out = [];
    this.forEach(function (value, key) { out.push([key, value]); });
    return out[Symbol.iterator]();
  };
  Headers.prototype.keys = function () {
    var out = [];
    this.forEach(function (value, key) { out.push(key); });
    return out[Symbol.iterator]();
  };
  Headers.prototype.values = function () {
    var out = [];
    this.forEach(function (value) { out.push(value); });
    return out[Symbol.iterator]();
  };
  Headers.prototype[Symbol.iterator] = Headers.prototype.entries;
  Headers.prototype.toJSON = function () {
    var out = {};
    this.forEach(function (value, key) { out[key] = value; });
    return out;
  };

  function Response(answer) {
    var text = answer.body;
    this.ok = answer.status >= 200 && answer.status < 300;
    this.status = answer.status;
    this.statusText = answer.statusText;
    this.url = answer.url;
    this.redirected = answer.redirected;
    this.headers = new Headers(answer.headers);
    var readText = function () { return text; };
    var readJson = function () { return jsonParse(text); };
    this.text = readText;
    this.json = readJson;
    // Published Upsun scripts read the body as response.body.text() / .json().
    this.body = { text: readText, json: readJson };
  }

  function fetch(url, init) {
    if (init === undefined || init === null) init = {};
    var request = {
      url: StringCtor(url),
      method: init.method === undefined ? 'GET' : StringCtor(init.method),
      headers: headerPairs(init.headers),
      body: null,
      binary: false,
      redirect: init.redirect === undefined ? 'follow' : StringCtor(init.redirect)
    };
    var body = init.body;
    if (body !== undefined && body !== null) {
      if (typeof body === 'string') {
        request.body = body;
      } else if (body instanceof ArrayBufferCtor || isView(body)) {
        request.body = bytesOf(body)[1];
        request.binary = true;
      } else {
        request.body = StringCtor(body);
      }
    }
    return new Response(hostCall('fetch', jsonStringify(request)));
  }

  // ---- Math.random -------------------------------------------------------------------------
  // Every run starts from the same snapshot, so the engine's generator state is the same in
  // every run; each run reseeds this xorshift128+ from the host's random bytes instead.
  var s0 = 1, s1 = 2, s2 = 3, s3 = 4;
  function random() {
    var t = s0 ^ (s0 << 11);
    s0 = s1; s1 = s2; s2 = s3;
    s3 = (s3 ^ (s3 >>> 19)) ^ (t ^ (t >>> 8));
    var hi = (s3 >>> 0) & 0x1fffff;
    var t2 = s1 ^ (s1 << 11);
    var lo = ((s2 ^ (s2 >>> 19)) ^ (t2 ^ (t2 >>> 8))) >>> 0;
    return (hi * 4294967296 + lo) / 9007199254740992;
  }
  defineProperty(Math, 'random', { value: random, writable: true, configurable: true, enumerable: false });

  // ---- globals -----------------------------------------------------------------------------
  // Plain assignment makes configurable properties, so a script may declare its own
  // `function variables()` or `const storage = require("storage")` over them.
  global.console = consoleObject;
  global.storage = storage;
  global.require = requireModule;
  global.crypto = crypto;
  global.fetch = fetch;

  function describe(error) {
    var out = { ok: false, name: null, message: '', stack: '' };
    try {
      if (error !== null && (typeof error === 'object' || typeof error === 'function') && 'message' in error) {
        out.name = error.name === undefined ? 'Error' : StringCtor(error.name);
        out.message = StringCtor(error.message);
        out.stack = typeof error.stack === 'string' ? error.stack : '';
      } else {
        out.message = render(error);
      }
    } catch (e) {
      out.message = 'an exception that cannot be described';
    }
    return jsonStringify(out);
  }

  var pending = null;

  // Called once per run by the host, right after the snapshot is restored.
  function hidden(name, fn) {
    defineProperty(global, name, { value: fn, writable: true, configurable: true, enumerable: false });
  }

  hidden('__fh_main', function () {
    delete global.__fh_main;
    delete global.__fh_settled;
    // The run's inputs arrive in one string: "<context length>,<activity length>\n" then
    // the context JSON, the activity JSON and the script source (lengths in UTF-16 units).
    var input = hostRaw('input');
    var newline = input.indexOf('\n');
    var lengths = input.slice(0, newline).split(',');
    var contextEnd = newline + 1 + (+lengths[0]);
    var activityEnd = contextEnd + (+lengths[1]);
    var context = jsonParse(input.slice(newline + 1, contextEnd));
    logLimit = context.logLimit;
    s0 = context.seed[0] | 0; s1 = context.seed[1] | 0; s2 = context.seed[2] | 0; s3 = context.seed[3] | 0;
    global.activity = jsonParse(input.slice(contextEnd, activityEnd));
    global.project = context.project;
    global.variables = context.variables;
    var source = input.slice(activityEnd);
    input = null;
    try {
      var result = indirectEval(source);
      // A script whose completion value is a promise (an async main) is awaited: the host
      // drains the job queue, then asks __fh_settled for its outcome.
      if (result instanceof PromiseCtor) {
        pending = { done: false, outcome: null };
        promiseThenCall(result,
          function () { pending.done = true; pending.outcome = '{"ok":true}'; },
          function (error) { pending.done = true; pending.outcome = describe(error); });
        hidden('__fh_settled', settled);
        return '{"ok":true,"pending":true}';
      }
      return '{"ok":true}';
    } catch (error) {
      return describe(error);
    }
  });

  // Installed only for a script whose completion value is a promise, once its synchronous
  // part is over.
  function settled() {
    delete global.__fh_settled;
    if (pending === null) return '{"ok":true}';
    if (!pending.done) return '{"ok":true,"unsettled":true}';
    return pending.outcome;
  }
})(this);
