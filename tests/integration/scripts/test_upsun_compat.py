"""Scripts written for Upsun, as documented, against the real activity fixtures."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json

import pytest

from firehook import scripts
from tests.integration.scripts.helpers import Server, fixture_json, run

SLACK = """
/**
 * Sends a color-coded formatted message to Slack.
 */
function sendSlackMessage(title, message) {
  const url = variables.SLACK_URL;

  const messageTitle = title + (new Date().getDay() === 5) ? ' (On a Friday! :calendar:)' : '';

  const color = activity.result === 'success' ? '#66c000' : '#ff0000';

  const body = {
    attachments: [
      {
        title: messageTitle,
        text: message,
        color: color,
      },
    ],
  };

  const resp = fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
    },
    body: JSON.stringify(body),
  });

  if (!resp.ok) {
    console.log('Sending slack message failed: ' + resp.body.text());
  }
}

sendSlackMessage(activity.text, activity.log);
"""

DISCORD = """
function sendDiscordMessage(title, message) {
  const url = variables.DISCORD_URL;
  const messageTitle = title + (new Date().getDay() === 5 ? ' (On a Friday! :calendar:)' : '');
  const color = activity.result === 'success' ? 7664640 : 16711680;
  const body = {
    embeds: [
      {
        title: messageTitle,
        description: message.substring(0, 4000),
        color: color,
      },
    ],
  };
  const resp = fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!resp.ok) {
    console.log('Sending Discord message failed: ' + resp.body.text());
  }
}

sendDiscordMessage(activity.text, activity.log);
"""

ROUTE_HELPERS = """
/**
 * Returns a key/value object containing all variables relevant for the activity.
 */
function variables() {
  var vars = {};
  activity.payload.deployment.variables.forEach(function(variable) {
    vars[variable.name] = variable.value;
  });

  return vars;
}

/**
 * Returns just those routes that point to a valid upstream.
 */
function getUpstreamRoutes(appName) {
  return Object.keys(activity.payload.deployment.routes).reduce(function(upstreams, url) {
    var route = activity.payload.deployment.routes[url];
    if (route.type === 'upstream' && (!appName || appName === route.upstream.split(':')[0])) {
      upstreams[url] = route;
    }
    return upstreams;
  }, {});
}

/**
 * Returns the primary route.
 */
function getPrimaryRoute() {
  return Object.keys(activity.payload.deployment.routes).reduce(function(primary, url) {
    return activity.payload.deployment.routes[url].primary
      ? activity.payload.deployment.routes[url]
      : primary;
  }, {});
}

/**
 * Returns the route definition that has the specified id.
 */
function getRouteById(id) {
  var routes = activity.payload.deployment.routes;
  for (var url in routes) {
    if (routes[url].id === id) {
      return routes[url];
    }
  }
  return null;
}

console.log(JSON.stringify(variables()));
console.log(Object.keys(getUpstreamRoutes()).join(' '));
console.log(Object.keys(getUpstreamRoutes('nope')).length);
console.log(getPrimaryRoute().production_url);
console.log(getRouteById('missing'));
"""

STORAGE_COUNTER = """
var storage = require("storage");
var counter = storage.get("counter") || 0;
storage.set("counter", counter + 1);
console.log("This script has run " + storage.get("counter") + " times");
"""

AWS_SIGNED_POST = """
function hmac(key, data, encoding) {
  return crypto.createHmac('sha256', key).update(data).digest(encoding);
}
function sha256(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}
function signingKey(secret, date, region, service) {
  var kDate = hmac('AWS4' + secret, date);
  var kRegion = hmac(kDate, region);
  var kService = hmac(kRegion, service);
  return hmac(kService, 'aws4_request');
}

var body = JSON.stringify({ id: activity.id, type: activity.type });
var amzDate = variables.AMZ_DATE;
var date = amzDate.slice(0, 8);
var host = variables.HOST;
var canonicalRequest = ['POST', '/echo', '', 'host:' + host, 'x-amz-date:' + amzDate, '',
                        'host;x-amz-date', sha256(body)].join('\\n');
var scope = [date, 'us-east-1', 'execute-api', 'aws4_request'].join('/');
var stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\\n');
var signature = hmac(signingKey(variables.SECRET, date, 'us-east-1', 'execute-api'), stringToSign, 'hex');
var resp = fetch('http://' + host + '/echo', {
  method: 'POST',
  headers: {
    'X-Amz-Date': amzDate,
    'Authorization': 'AWS4-HMAC-SHA256 Credential=' + variables.KEY_ID + '/' + scope +
                     ', SignedHeaders=host;x-amz-date, Signature=' + signature,
  },
  body: body,
});
console.log(resp.status, signature);
"""


def _slack_like_payload(server: Server) -> dict[str, object]:
    assert len(server.requests) == 1
    request = server.requests[0]
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    return json.loads(request.body)


@pytest.mark.parametrize(
    "fixture", ["push-complete.json", "redeploy-complete.json", "redeploy-pending.json"]
)
def test_slack_message(server: Server, fixture: str) -> None:
    activity = fixture_json(fixture)
    result = run(SLACK, activity_json=activity, variables={"SLACK_URL": server.url("/echo")})
    assert result.outcome.success, result.log
    payload = _slack_like_payload(server)
    document = json.loads(activity)
    attachment = payload["attachments"][0]  # type: ignore[index]
    assert attachment["text"] == document["log"]
    assert attachment["color"] == ("#66c000" if document.get("result") == "success" else "#ff0000")
    # Upsun's own example has an operator-precedence slip: the title is always this string.
    assert attachment["title"] == " (On a Friday! :calendar:)"


def test_slack_failure_is_logged(server: Server) -> None:
    result = run(
        SLACK,
        activity_json=fixture_json("push-complete.json"),
        variables={"SLACK_URL": server.url("/status?code=400&body=invalid_payload")},
    )
    assert result.outcome.success, result.log
    assert result.lines[-1] == "Sending slack message failed: invalid_payload"


def test_discord_message(server: Server) -> None:
    activity = fixture_json("redeploy-complete.json")
    result = run(DISCORD, activity_json=activity, variables={"DISCORD_URL": server.url("/echo")})
    assert result.outcome.success, result.log
    embed = _slack_like_payload(server)["embeds"][0]  # type: ignore[index]
    document = json.loads(activity)
    friday = datetime.date.today().weekday() == 4
    assert embed["title"] == document["text"] + (" (On a Friday! :calendar:)" if friday else "")
    assert embed["description"] == document["log"][:4000]
    assert embed["color"] == 7664640


def test_route_helpers_on_a_redeploy() -> None:
    activity = fixture_json("redeploy-complete.json")
    document = json.loads(activity)
    routes = document["payload"]["deployment"]["routes"]
    result = run(ROUTE_HELPERS, activity_json=activity, variables={"ignored": True})
    assert result.outcome.success, result.log
    upstreams = [url for url, route in routes.items() if route["type"] == "upstream"]
    primary = next(route for route in routes.values() if route.get("primary"))
    expected_vars = {v["name"]: v["value"] for v in document["payload"]["deployment"]["variables"]}
    assert result.lines == [
        json.dumps(expected_vars, separators=(",", ":")),
        " ".join(upstreams),
        "0",
        primary["production_url"],
        "null",
    ]


def test_route_helpers_on_a_push_variables() -> None:
    result = run(
        ROUTE_HELPERS.split("console.log")[0] + "console.log(variables()['php:memory_limit'])",
        activity_json=fixture_json("push-complete.json"),
    )
    assert result.lines == ["512M"]


def test_storage_counter() -> None:
    store = scripts.MemoryStorage()
    lines = [run(STORAGE_COUNTER, storage=store).lines[-1] for _ in range(3)]
    assert lines == [f"This script has run {n} times" for n in (1, 2, 3)]


def test_fetch_get_and_post(server: Server) -> None:
    source = """
var status = fetch(variables.BASE + '/json');
console.log('GET', status.status, status.json().hello);
var created = fetch(variables.BASE + '/echo', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + variables.TOKEN },
  body: JSON.stringify({ activity: activity.id, state: activity.state }),
});
var echo = created.json();
console.log('POST', created.status, echo.headers.authorization, echo.body);
"""
    activity = fixture_json("redeploy-in-progress.json")
    document = json.loads(activity)
    result = run(source, activity_json=activity, variables={"BASE": server.base, "TOKEN": "t0k"})
    assert result.outcome.success, result.log
    body = json.dumps(
        {"activity": document["id"], "state": document["state"]}, separators=(",", ":")
    )
    assert [line for line in result.lines if not line.startswith("HTTP ")] == [
        "GET 200 world",
        f"POST 200 Bearer t0k {body}",
    ]


def test_hmac_and_aws_signature_chain(server: Server) -> None:
    activity = fixture_json("push-complete.json")
    document = json.loads(activity)
    host = f"127.0.0.1:{server.port}"
    amz_date = "20251214T154105Z"
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    result = run(
        AWS_SIGNED_POST,
        activity_json=activity,
        variables={"AMZ_DATE": amz_date, "HOST": host, "SECRET": secret, "KEY_ID": "AKIDEXAMPLE"},
    )
    assert result.outcome.success, result.log

    def sign(key: bytes, data: str) -> bytes:
        return hmac.new(key, data.encode(), hashlib.sha256).digest()

    body = json.dumps({"id": document["id"], "type": document["type"]}, separators=(",", ":"))
    canonical = "\n".join(
        [
            "POST",
            "/echo",
            "",
            f"host:{host}",
            f"x-amz-date:{amz_date}",
            "",
            "host;x-amz-date",
            hashlib.sha256(body.encode()).hexdigest(),
        ]
    )
    scope = "20251214/us-east-1/execute-api/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = sign(
        sign(sign(sign(("AWS4" + secret).encode(), "20251214"), "us-east-1"), "execute-api"),
        "aws4_request",
    )
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert result.lines[-1] == f"200 {expected}"
    request = server.requests[0]
    assert request.headers["authorization"].endswith(f"Signature={expected}")
    assert request.body == body.encode()
