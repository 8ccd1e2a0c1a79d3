//! End to end in a real headless Chromium (Debian's `chromium`), driven over its DevTools
//! protocol by a small client on a websocket: load the list, filter it through the form (typed
//! and clicked like a user), open a battle from the list, check the two sides side by side and
//! the chart drawn, then the same report at phone width with the sides stacked. Fails when
//! Chromium is missing (`.ci/run` installs it).

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The browser binary: `CHROMIUM` if set, else `chromium` on the PATH.
fn chromium_binary() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// A headless Chromium process with its profile directory; killed on drop.
struct Browser {
    child: Child,
    /// `127.0.0.1:PORT/devtools/browser/ID`, as Chromium prints it.
    address: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("profile directory");
        let binary = chromium_binary();
        let mut child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}): install it with `apt-get install -y chromium`")
            });
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("DevTools listening on ws://").nth(1) {
                    let _ = tx.send(rest.to_owned());
                }
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("Chromium printed its DevTools address");
        Browser {
            child,
            address,
            _profile: profile,
        }
    }

    /// A new tab and a DevTools session on it.
    fn new_tab(&self) -> Tab {
        let mut browser = Cdp::connect(&format!("ws://{}", self.address));
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
        let id = target["targetId"].as_str().expect("targetId").to_owned();
        let host = self.address.split('/').next().expect("host:port");
        let page = Cdp::connect(&format!("ws://{host}/devtools/page/{id}"));
        Tab { cdp: page }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One DevTools websocket: commands answered by id, events skipped.
struct Cdp {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
}

impl Cdp {
    fn connect(url: &str) -> Cdp {
        let (ws, _) = tungstenite::connect(url).expect("DevTools websocket");
        if let MaybeTlsStream::Plain(stream) = ws.get_ref() {
            // A browser that stops answering fails the test instead of hanging it.
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .expect("read timeout");
        }
        Cdp { ws, next: 0 }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// The result of `method`, or the error DevTools answered with.
    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next += 1;
        let id = self.next;
        let message = json!({ "id": id, "method": method, "params": params });
        self.ws
            .send(Message::text(message.to_string()))
            .expect("send to DevTools");
        loop {
            let message = self.ws.read().expect("read from DevTools");
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if value["id"] == id {
                return match value.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(value["result"].clone()),
                };
            }
        }
    }
}

struct Tab {
    cdp: Cdp,
}

impl Tab {
    /// Evaluates `expression` in the page; its value.
    /// An evaluation that meets a navigation in progress ("Inspected target navigated or
    /// closed": the page it ran in went away) is asked again in the next page.
    fn eval(&mut self, expression: &str) -> Value {
        let params = json!({ "expression": expression, "returnByValue": true });
        let mut retries = 0;
        let result = loop {
            match self.cdp.try_call("Runtime.evaluate", params.clone()) {
                Ok(result) => break result,
                Err(error)
                    if retries < 100
                        && error["message"] == json!("Inspected target navigated or closed") =>
                {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => panic!("Runtime.evaluate: {error}"),
            }
        };
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    fn text(&mut self, selector: &str) -> String {
        let expression = format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.textContent.trim() : null; }})()",
            json!(selector)
        );
        match self.eval(&expression) {
            Value::String(s) => s,
            other => panic!("no element {selector} ({other}) on {}", self.url()),
        }
    }

    fn count(&mut self, selector: &str) -> u64 {
        self.eval(&format!(
            "document.querySelectorAll({}).length",
            json!(selector)
        ))
        .as_u64()
        .unwrap()
    }

    fn url(&mut self) -> String {
        self.eval("location.href").as_str().unwrap_or("").to_owned()
    }

    fn navigate(&mut self, url: &str) {
        self.cdp.call("Page.navigate", json!({ "url": url }));
        self.wait_for(|tab| tab.loaded_at(url));
    }

    /// True when the document at `url` has loaded.
    fn loaded_at(&mut self, url: &str) -> bool {
        self.eval("document.readyState + ' ' + location.href") == json!(format!("complete {url}"))
    }

    fn wait_for(&mut self, mut done: impl FnMut(&mut Tab) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out on {}", self.url());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The centre of the element's box, scrolled into view.
    fn centre(&mut self, selector: &str) -> (f64, f64) {
        let value = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); e.scrollIntoView({{block: 'center'}}); \
               const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
            json!(selector)
        ));
        (value[0].as_f64().unwrap(), value[1].as_f64().unwrap())
    }

    /// A real mouse click (pressed and released) on the element.
    fn click(&mut self, selector: &str) {
        let (x, y) = self.centre(selector);
        for kind in ["mousePressed", "mouseReleased"] {
            self.cdp.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            );
        }
    }

    /// Clicks the field and types `text` into it.
    fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector);
        self.cdp.call("Input.insertText", json!({ "text": text }));
    }

    /// The element's box: left, top, width, height.
    fn rect(&mut self, selector: &str) -> [f64; 4] {
        let value = self.eval(&format!(
            "(() => {{ const r = document.querySelector({}).getBoundingClientRect(); \
               return [r.left, r.top + window.scrollY, r.width, r.height]; }})()",
            json!(selector)
        ));
        [0, 1, 2, 3].map(|i| value[i].as_f64().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filter_open_a_battle_and_see_both_sides_and_the_chart() {
    let api = TestApi::seeded().await;
    let base = api.base.clone();
    let browser = Browser::launch();
    let mut tab = browser.new_tab();

    // The list.
    tab.navigate(&format!("{base}/"));
    assert_eq!(tab.count("#battles tr.battle"), 4);
    assert_eq!(tab.count("#largest tr.battle"), 4);
    let background = tab.eval("getComputedStyle(document.body).backgroundColor");
    assert_eq!(
        background,
        json!("rgb(11, 15, 20)"),
        "the dark theme applies"
    );

    // Filter it: type a region into the form and press the button.
    tab.type_into("#filters input[name=regionId]", "10000002");
    tab.click("#filters button[type=submit]");
    tab.wait_for(|t| {
        t.eval("document.readyState") == json!("complete")
            && t.url().starts_with(&format!("{base}/?"))
            && t.url().contains("regionId=10000002")
    });
    assert_eq!(tab.count("#battles tr.battle"), 1, "only The Forge");
    assert_eq!(tab.count("#largest"), 0);
    assert!(tab.text("#battles tr.battle").contains("Jita"));

    // Open the battle from the list.
    tab.click(&format!("#battles tr.battle a[href='/battles/{JITA}']"));
    let report = format!("{base}/battles/{JITA}");
    tab.wait_for(|t| t.loaded_at(&report));
    assert_eq!(tab.text("h1"), "Battle in Jita");
    assert_eq!(tab.text("#team-a h2"), "Team A winner");
    assert_eq!(tab.text("#team-a .isk-destroyed"), "120.00b");
    assert_eq!(tab.text("#team-a .efficiency"), "80.0%");
    assert_eq!(tab.text("#team-b h2"), "Team B");
    assert_eq!(tab.text("#team-b .isk-lost"), "120.00b");
    assert_eq!(tab.text("#team-b .efficiency"), "20.0%");
    let a = tab.rect("#team-a");
    let b = tab.rect("#team-b");
    assert!(
        a[0] + a[2] <= b[0],
        "side by side on a desktop: {a:?} {b:?}"
    );
    assert_eq!(a[1], b[1], "the sides start level");

    // The chart: drawn, laid out, one bar per minute with kills.
    let chart = tab.rect("#timeline-kills");
    assert!(chart[2] > 800.0 && chart[3] > 100.0, "chart box {chart:?}");
    assert_eq!(tab.count("#timeline-kills rect.bar-a"), 3);
    assert_eq!(tab.count("#timeline-kills rect.bar-b"), 1);
    assert_eq!(tab.count("#timeline-isk rect.bar-a"), 3);
    let bar = tab.rect("#timeline-kills rect.bar-b");
    assert!(bar[2] > 0.0 && bar[3] > 0.0, "the bar has a size: {bar:?}");
    let fill =
        tab.eval("getComputedStyle(document.querySelector('#timeline-kills rect.bar-a')).fill");
    assert_eq!(fill, json!("rgb(77, 163, 255)"), "team A's colour");

    // The killmails link to zKillboard.
    let link = tab.eval("document.querySelector('#top-kills a.zkill').href");
    assert_eq!(link, json!("https://zkillboard.com/kill/123456703/"));

    // On a phone the sides stack.
    tab.cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true }),
    );
    tab.navigate(&report);
    let a = tab.rect("#team-a");
    let b = tab.rect("#team-b");
    assert!(a[1] + a[3] <= b[1], "stacked on a phone: {a:?} {b:?}");
    let width = tab
        .eval("document.documentElement.scrollWidth")
        .as_f64()
        .unwrap();
    if width > 390.0 {
        let wide = tab.eval(
            "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth) \
               .slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id)",
        );
        panic!("no sideways scrolling of the page: {width} px wide; past the edge: {wide}");
    }

    drop(tab);
    drop(browser);
    api.stop().await;
}
