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
