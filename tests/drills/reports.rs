use std::path::Path;
use std::process::Command;

use crate::fixture::Env;
use crate::plan::Drill;
use crate::support::{assert_status, require_cgroups, stdout};

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/drills/junit.xsd");

/// A drill with a reproducible and a failing case, run `times` times.
fn drill_twice(env: &Env, times: usize) -> Drill {
    let drill = Drill::new();
    drill.plan(&[
        &Drill::case("hello", "mkdir -p out && echo hello > out/hello"),
        &Drill::case("broken <&>", "exit 7"),
    ]);
    for round in 0..times {
        let (output, _) = drill.run(env, "runner-a", &format!("round{round}"));
        assert_status(&output, 1);
    }
    drill
}

#[test]
fn the_junit_report_validates_against_the_schema() {
    require_cgroups();
    let env = Env::new();
    let drill = drill_twice(&env, 1);
    let junit = drill.path("round0.xml");
    let output = Command::new("xmllint")
        .args(["--noout", "--schema", SCHEMA])
        .arg(&junit)
        .output()
        .expect("xmllint (libxml2-utils; scripts/test-setup.sh installs it)");
    assert_status(&output, 0);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert!(
        xml.contains("exited with status 7\" type=\"failed\">"),
        "{xml}"
    );
    assert!(xml.contains("name=\"broken &lt;&amp;&gt;\""), "{xml}");

    // The schema is not a rubber stamp: a failure without its reason is refused.
    let broken = drill.path("broken.xml");
    std::fs::write(&broken, xml.replace("<failure message=", "<failure note=")).unwrap();
    let output = Command::new("xmllint")
        .args(["--noout", "--schema", SCHEMA])
        .arg(&broken)
        .output()
        .unwrap();
    assert_ne!(output.status.code(), Some(0));
}

#[test]
fn the_html_report_renders_in_headless_chromium_with_its_charts() {
    require_cgroups();
    let env = Env::new();
    let drill = drill_twice(&env, 2);
    let page = drill.path("round1.html");
    let profile = tempfile::tempdir().unwrap();
    let chromium = |extra: &[&str]| {
        let output = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium (scripts/test-setup.sh installs it)");
        assert_status(&output, 0);
        output
    };
    let dom = stdout(&chromium(&["--dump-dom"]));
    assert_eq!(dom.matches("<tr class=\"row passed\">").count(), 1, "{dom}");
    assert_eq!(dom.matches("<tr class=\"row failed\">").count(), 1, "{dom}");
    assert!(dom.contains("<svg id=\"pass-rate\""), "{dom}");
    assert!(dom.contains("<svg id=\"durations\""), "{dom}");
    assert_eq!(
        dom.matches("<polyline class=\"series\"").count(),
        2,
        "{dom}"
    );
    assert!(dom.contains("Over the last 2 drill(s)"), "{dom}");

    let screenshot = drill.path("page.png");
    chromium(&[
        &format!("--screenshot={}", screenshot.display()),
        "--window-size=1000,900",
    ]);
    let (width, height, colours) = png_colours(&screenshot);
    assert_eq!((width, height), (1000, 900));
    // Text, the red and green of the results and the chart lines: a blank or one-colour
    // page has one or two.
    assert!(
        colours > 16,
        "{colours} colours in {}",
        screenshot.display()
    );
}

/// A PNG's size and its number of distinct colours. Reads 8-bit RGB and RGBA, what
/// Chromium writes; hand-written because no image crate is in the workspace, and these
/// forty lines are all a check needs (zlib is flate2's).
fn png_colours(path: &Path) -> (u32, u32, usize) {
    use std::io::Read;
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut at, mut header, mut data) = (8, None, Vec::new());
    while at + 8 <= bytes.len() {
        let length = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let body = &bytes[at + 8..at + 8 + length];
        match kind {
            b"IHDR" => header = Some(body.to_vec()),
            b"IDAT" => data.extend_from_slice(body),
            _ => {}
        }
        at += 12 + length;
    }
    let header = header.expect("IHDR");
    let width = u32::from_be_bytes(header[0..4].try_into().unwrap());
    let height = u32::from_be_bytes(header[4..8].try_into().unwrap());
    let channels = match (header[8], header[9]) {
        (8, 2) => 3,
        (8, 6) => 4,
        other => panic!("bit depth and colour type {other:?}"),
    };
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&data[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width as usize * channels;
    let mut previous = vec![0u8; stride];
    let mut colours = std::collections::HashSet::new();
    for row in raw.chunks(stride + 1).take(height as usize) {
        let (filter, line) = (row[0], &row[1..]);
        let mut current = vec![0u8; stride];
        for i in 0..stride {
            let left = if i >= channels {
                current[i - channels]
            } else {
                0
            };
            let up = previous[i];
            let up_left = if i >= channels {
                previous[i - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => left,
                2 => up,
                3 => ((u16::from(left) + u16::from(up)) / 2) as u8,
                4 => {
                    let p = i16::from(left) + i16::from(up) - i16::from(up_left);
                    let (pa, pb, pc) = (
                        (p - i16::from(left)).abs(),
                        (p - i16::from(up)).abs(),
                        (p - i16::from(up_left)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        left
                    } else if pb <= pc {
                        up
                    } else {
                        up_left
                    }
                }
                other => panic!("PNG filter {other}"),
            };
            current[i] = line[i].wrapping_add(predicted);
        }
        for pixel in current.chunks(channels) {
            colours.insert([pixel[0], pixel[1], pixel[2]]);
        }
        previous = current;
    }
    (width, height, colours.len())
}
