//! Charts as drawn: the PNG and the SVG of one chart agree, and a curve of
//! values that are never negative is never drawn below zero.

use statectl::charts::{write, LineChart};

use crate::util::*;

/// A loss curve falling from 0.5 to 0.005: close to zero, never below.
fn falling_losses() -> LineChart {
    let points = (0..40)
        .map(|i| (i as f64, 0.005 + 0.495 * (-(i as f64) / 4.0).exp()))
        .collect();
    LineChart {
        title: "losses".into(),
        x_label: "epoch".into(),
        y_label: "loss".into(),
        series: vec![("m".into(), points)],
        log_y: false,
    }
}

/// The PNG's pixels, RGB, row-major, with its width.
fn pixels(path: &std::path::Path) -> (Vec<u8>, usize) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (buf, info.width as usize)
}

#[test]
fn a_curve_that_is_never_negative_is_never_drawn_below_zero_in_png_or_svg() {
    let env = Env::new();
    let (png_path, svg_path) = (env.path("losses.png"), env.path("losses.svg"));
    write(&png_path, &falling_losses()).unwrap();
    write(&svg_path, &falling_losses()).unwrap();
    // The SVG's y axis: its tick labels (right-aligned), none below zero,
    // and where y = 0 falls, in pixels (the PNG has the same layout).
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let ticks: Vec<(f64, f64)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("text-anchor") == Some("end"))
        .filter_map(|n| {
            let value = n.text()?.trim().parse::<f64>().ok()?;
            Some((value, n.attribute("y")?.parse::<f64>().ok()?))
        })
        .collect();
    assert!(ticks.len() >= 2, "{ticks:?}");
    assert!(
        ticks.iter().all(|(v, _)| *v >= 0.0),
        "negative ticks: {ticks:?}"
    );
    let ((v1, y1), (v2, y2)) = (ticks[0], ticks[ticks.len() - 1]);
    let zero_row = y1 - v1 * (y2 - y1) / (v2 - v1);
    // The PNG: the plot area (down to the x axis, the lowest long dark
    // line) and the curve (the first series' colour) end at y = 0.
    let (rgb, width) = pixels(&png_path);
    let rows: Vec<&[u8]> = rgb.chunks(width * 3).collect();
    let is_curve = |p: &[u8]| p == [0x1F, 0x77, 0xB4];
    let lowest_curve = rows
        .iter()
        .rposition(|row| row.chunks(3).any(is_curve))
        .expect("the curve is drawn");
    let axis = rows
        .iter()
        .rposition(|row| row.chunks(3).filter(|p| p.iter().all(|c| *c < 60)).count() > width / 2)
        .expect("an x axis");
    assert!(
        (axis as f64) <= zero_row + 1.5 && (lowest_curve as f64) <= zero_row + 1.5,
        "y = 0 is at row {zero_row}; the plot area reaches row {axis}, the curve row {lowest_curve}"
    );
}

/// The SVG's y-axis tick labels on the left (right-aligned): (value, y).
fn left_ticks(svg: &str) -> Vec<(f64, f64)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("text-anchor") == Some("end"))
        .filter_map(|n| {
            let value = n.text()?.trim().parse::<f64>().ok()?;
            Some((value, n.attribute("y")?.parse::<f64>().ok()?))
        })
        .collect()
}

#[test]
fn a_log_scale_spaces_decades_evenly_and_refuses_what_it_cannot_draw() {
    let env = Env::new();
    let path = env.path("log.svg");
    let mut chart = falling_losses();
    chart.log_y = true;
    write(&path, &chart).unwrap();
    let ticks = left_ticks(&std::fs::read_to_string(&path).unwrap());
    assert!(ticks.len() >= 3, "{ticks:?}");
    // Pixels per decade are the same between any two ticks.
    let per_decade: Vec<f64> = ticks
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) / (w[1].0.log10() - w[0].0.log10()))
        .collect();
    let first = per_decade[0];
    assert!(
        per_decade
            .iter()
            .all(|p| ((p - first) / first).abs() < 0.02),
        "not a log axis: {ticks:?} -> {per_decade:?}"
    );
    // A linear axis does not pass that check.
    let linear = env.path("linear.svg");
    write(&linear, &falling_losses()).unwrap();
    let ticks = left_ticks(&std::fs::read_to_string(&linear).unwrap());
    let spans: Vec<f64> = ticks
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) / (w[1].0.log10() - w[0].0.log10()))
        .collect();
    assert!(
        spans
            .iter()
            .any(|p| ((p - spans[0]) / spans[0]).abs() > 0.1),
        "{ticks:?}"
    );
    // A zero cannot be drawn on a log axis: refused, no file.
    chart.series[0].1.push((41.0, 0.0));
    let refused = env.path("zero.svg");
    let err = write(&refused, &chart).unwrap_err();
    assert!(
        format!("{err:#}").contains("a log scale needs positive"),
        "{err:#}"
    );
    assert!(!refused.exists());
}

#[test]
fn a_heatmap_has_a_colour_bar_per_panel_from_minus_to_plus_its_scale() {
    let env = Env::new();
    let h = statectl::tensors::Tensor::new(vec![2, 3], vec![-2.0, -1.0, 0.0, 0.5, 1.0, 2.0]);
    let c = statectl::tensors::Tensor::new(vec![2, 3], vec![0.1; 6]);
    let file = env.write_tensors("s.safetensors", &[("l0.h", h), ("l0.c", c)]);
    env.ok(&["import", s(&file), "--tag", "s"]);
    let svg_path = env.path("s.svg");
    env.ok(&["plot", "state", "s", "-o", s(&svg_path)]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    assert_eq!(
        texts.iter().filter(|t| *t == "value").count(),
        2,
        "{texts:?}"
    );
    // The h bar spans -2..2, the c bar -0.1..0.1: their end labels.
    for label in ["-2.00", "2.00", "0.00", "-0.10", "0.10"] {
        assert!(
            texts.iter().any(|t| t == label),
            "no tick {label}: {texts:?}"
        );
    }
    // The bar's ends are the two end colours of the diverging scale.
    assert!(
        svg.contains("#1F77B4") || svg.to_lowercase().contains("#1f77b4"),
        "no full blue"
    );
    assert!(
        svg.contains("#D62728") || svg.to_lowercase().contains("#d62728"),
        "no full red"
    );
}
