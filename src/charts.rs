//! Charts for people who would rather look than read: line charts
//! (losses), heatmaps (a state's values) and grouped bars (staleness), as
//! SVG or PNG, drawn with `plotters`. Each chart has a title, labelled axes
//! and, where it has several series, a legend. Files are drawn under a temp
//! name and renamed into place, so a reader never sees half a chart.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, bail, Context as _, Result};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

/// The one font charts use, embedded so a chart looks the same everywhere.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (900, 540);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An embedded, known-good font: registering it cannot fail.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// The format a file name asks for: `.svg` or `.png`.
fn is_png(path: &Path) -> Result<bool> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
    {
        Some(e) if e == "svg" => Ok(false),
        Some(e) if e == "png" => Ok(true),
        _ => bail!(
            "cannot tell the chart format of '{}': name the file .svg or .png",
            path.display()
        ),
    }
}

fn drawing<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the chart failed: {e:?}")
}

/// Something that draws itself on any plotters backend.
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Draws `chart` to `path` (.svg or .png) under a temp name, then renames
/// it into place.
pub fn write(path: &Path, chart: &impl Chart) -> Result<()> {
    register_font();
    let png = is_png(path)?;
    // The temp name keeps the extension: the PNG encoder goes by it.
    let ext = if png { "png" } else { "svg" };
    // Removed if drawing fails (dropped), renamed into place if not.
    let staged = crate::staging::temp_beside(path, &format!(".tmp.{ext}"))
        .with_context(|| format!("cannot write '{}'", path.display()))?;
    let tmp = staged.path().to_path_buf();
    let drawn = if png {
        let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|_| root.present().map_err(drawing))
    } else {
        let root = SVGBackend::new(&tmp, SIZE).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|_| root.present().map_err(drawing))
    };
    drawn.map_err(|e| e.context(format!("cannot write '{}'", path.display())))?;
    staged.persist(path).map_err(|e| {
        anyhow::Error::new(e.error).context(format!("cannot write '{}'", path.display()))
    })?;
    Ok(())
}

fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

/// A range that is never empty, with a little room around the data; data
/// that is never negative (losses) gets no room below zero, so no line is
/// drawn below the zero it cannot reach.
fn padded(min: f64, max: f64) -> std::ops::Range<f64> {
    let (min, max) = if min.is_finite() && max.is_finite() {
        (min, max)
    } else {
        (0.0, 1.0)
    };
    let room = ((max - min).abs() * 0.05).max(1e-9);
    let low = if min >= 0.0 {
        (min - room).max(0.0)
    } else {
        min - room
    };
    low..(max + room)
}

/// The legend, in the same place and style on every chart.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(drawing)
}

/// Lines over a shared x axis (losses by epoch or batch).
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// (name, points)
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// A logarithmic y axis (every value must be positive).
    pub log_y: bool,
}

impl LineChart {
    /// The lines on whichever y axis (linear or log) `y` describes.
    fn draw_with<DB: DrawingBackend, Y>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x: std::ops::Range<f64>,
        y: Y,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FAMILY, 14))
            .draw()
            .map_err(drawing)?;
        for (i, (name, points)) in self.series.iter().enumerate() {
            let color = palette(i);
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(drawing)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart)
    }
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(drawing)?;
        let all = self.series.iter().flat_map(|(_, p)| p.iter());
        let (xs, ys): (Vec<f64>, Vec<f64>) = all.cloned().unzip();
        let fold = |v: &[f64], f: fn(f64, f64) -> f64, start: f64| v.iter().copied().fold(start, f);
        let x = padded(
            fold(&xs, f64::min, f64::INFINITY),
            fold(&xs, f64::max, f64::NEG_INFINITY),
        );
        let (low, high) = (
            fold(&ys, f64::min, f64::INFINITY),
            fold(&ys, f64::max, f64::NEG_INFINITY),
        );
        if !self.log_y {
            return self.draw_with(root, x, padded(low, high));
        }
        if !(low > 0.0 && high.is_finite()) {
            bail!("a log scale needs positive, finite values; the smallest here is {low}: drop --log-scale");
        }
        // A little room either side, in ratio; ticks at 1, 2, 5 of every
        // decade (plotters alone marks decades only).
        let range = low / 1.25..high * 1.25;
        let ticks = one_two_five(range.start, range.end);
        self.draw_with(root, x, range.log_scale().with_key_points(ticks))
    }
}

/// 1, 2 and 5 times each power of ten within `low..=high`; a range too
/// narrow to hold three of them gets five ticks evenly spaced in ratio,
/// to three significant digits.
fn one_two_five(low: f64, high: f64) -> Vec<f64> {
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    let ticks: Vec<f64> = (first..=last)
        .flat_map(|d| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(d)))
        .filter(|v| (low..=high).contains(v))
        .collect();
    if ticks.len() >= 3 {
        return ticks;
    }
    let ratio = (high / low).powf(0.25);
    (0..5)
        .map(|i| {
            let v = low * ratio.powi(i);
            let unit = 10f64.powi(v.log10().floor() as i32 - 2);
            (v / unit).round() * unit
        })
        .filter(|v| (low..=high).contains(v))
        .collect()
}

/// Heatmaps side by side, one per panel (a layer's `h` or `c`): rows are
/// slots, columns units; blue for negative, red for positive values.
pub struct Heatmaps {
    pub title: String,
    pub panels: Vec<Panel>,
}

/// One heatmap: `rows` x `cols` values, row-major.
pub struct Panel {
    pub title: String,
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f32>,
}

/// Most cells a heatmap draws along each axis: a larger panel is shown in
/// blocks (each block the value of largest magnitude in it), so a
/// 65,536-slot state is a chart, not gigabytes of rectangles.
const MAX_CELLS_PER_AXIS: usize = 512;

/// A panel reduced to at most [`MAX_CELLS_PER_AXIS`] cells a side: rows,
/// cols, values, and how many slots and units one cell stands for. A block
/// holding a NaN or an infinity shows it (damage must not hide).
fn in_blocks(panel: &Panel) -> (usize, usize, Vec<f32>, usize, usize) {
    let (rows, cols) = (panel.rows.max(1), panel.cols.max(1));
    let row_step = rows.div_ceil(MAX_CELLS_PER_AXIS);
    let col_step = cols.div_ceil(MAX_CELLS_PER_AXIS);
    if row_step == 1 && col_step == 1 {
        return (panel.rows, panel.cols, panel.values.clone(), 1, 1);
    }
    let (out_rows, out_cols) = (rows.div_ceil(row_step), cols.div_ceil(col_step));
    let mut out = vec![0f32; out_rows * out_cols];
    for (i, v) in panel.values.iter().enumerate().take(rows * cols) {
        let cell = &mut out[(i / cols / row_step) * out_cols + (i % cols) / col_step];
        if !v.is_finite() || (cell.is_finite() && v.abs() > cell.abs()) {
            *cell = *v;
        }
    }
    (out_rows, out_cols, out, row_step, col_step)
}

/// How a panel's caption names its scale, its non-finite values and its
/// blocks.
fn caption(panel: &Panel, scale: f32, row_step: usize, col_step: usize) -> String {
    let nan = panel.values.iter().filter(|v| v.is_nan()).count();
    let inf = panel.values.iter().filter(|v| v.is_infinite()).count();
    let mut text = format!("{} (|max| {scale:.3}", panel.title);
    if nan + inf > 0 {
        text.push_str(&format!(" of finite values; {nan} NaN, {inf} inf in grey"));
    }
    if row_step > 1 || col_step > 1 {
        text.push_str(&format!(
            "; a cell = {row_step} slot(s) x {col_step} unit(s)"
        ));
    }
    text.push(')');
    text
}

/// Non-finite values: grey, apart from every finite colour.
const NON_FINITE: RGBColor = RGBColor(128, 128, 128);

fn diverging(v: f32, scale: f32) -> RGBColor {
    if !v.is_finite() {
        return NON_FINITE;
    }
    let t = if scale > 0.0 && v.is_finite() {
        (v / scale).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let fade = |c: f32| (255.0 * (1.0 - t.abs()) + c * t.abs()) as u8;
    if t >= 0.0 {
        RGBColor(fade(214.0), fade(39.0), fade(40.0))
    } else {
        RGBColor(fade(31.0), fade(119.0), fade(180.0))
    }
}

/// Pixels a panel gives its colour bar.
const COLOUR_BAR_WIDTH: i32 = 72;

/// The scale a heatmap's colours stand for: -|max| (blue) to +|max| (red),
/// beside the panel, its plot area level with the panel's.
fn colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, scale: f32) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let top = if scale > 0.0 { scale as f64 } else { 1.0 };
    const STEPS: usize = 64;
    // The same caption height, margins and x label area as the panel,
    // so the bar's ends are level with the panel's first and last slot.
    let mut chart = ChartBuilder::on(area)
        .caption("value", (FAMILY, 16))
        .margin_top(10)
        .margin_bottom(10)
        .margin_left(2)
        .margin_right(4)
        .x_label_area_size(40)
        .set_label_area_size(LabelAreaPosition::Right, 48)
        .build_cartesian_2d(0f64..1f64, -top..top)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .y_label_formatter(&|v| format!("{v:.2}"))
        .label_style((FAMILY, 12))
        .draw()
        .map_err(drawing)?;
    let step = 2.0 * top / STEPS as f64;
    chart
        .draw_series((0..STEPS).map(|i| {
            let low = -top + i as f64 * step;
            let colour = diverging((low + step / 2.0) as f32, top as f32);
            Rectangle::new([(0.0, low), (1.0, low + step)], colour.filled())
        }))
        .map_err(drawing)?;
    Ok(())
}

impl Chart for Heatmaps {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(drawing)?;
        let root = root.titled(&self.title, (FAMILY, 22)).map_err(drawing)?;
        let areas = root.split_evenly((1, self.panels.len().max(1)));
        for (panel, area) in self.panels.iter().zip(&areas) {
            let scale = panel
                .values
                .iter()
                .filter(|v| v.is_finite())
                .fold(0f32, |m, v| m.max(v.abs()));
            let (rows, cols, values, row_step, col_step) = in_blocks(panel);
            let width = area.dim_in_pixel().0 as i32;
            let (area, bar) = area.split_horizontally(width - COLOUR_BAR_WIDTH);
            colour_bar(&bar, scale)?;
            let mut chart = ChartBuilder::on(&area)
                .caption(caption(panel, scale, row_step, col_step), (FAMILY, 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(44)
                .build_cartesian_2d(0..cols, 0..rows)
                .map_err(drawing)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("unit")
                .y_desc("slot")
                .label_style((FAMILY, 12))
                .draw()
                .map_err(drawing)?;
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let (r, c) = (i / cols.max(1), i % cols.max(1));
                    Rectangle::new([(c, r), (c + 1, r + 1)], diverging(*v, scale).filled())
                }))
                .map_err(drawing)?;
        }
        Ok(())
    }
}

/// Bars grouped by slot, one colour per series (zero / stored / burn-in).
pub struct GroupedBars {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// One label per group (slot).
    pub groups: Vec<String>,
    /// (name, one value per group)
    pub series: Vec<(String, Vec<f64>)>,
}

impl Chart for GroupedBars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(drawing)?;
        let top = self
            .series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite())
            .fold(0f64, f64::max);
        let n = self.groups.len();
        let groups = self.groups.clone();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..(top * 1.1).max(1e-9))
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(40))
            .x_label_formatter(&move |x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    groups.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FAMILY, 14))
            .draw()
            .map_err(drawing)?;
        let k = self.series.len().max(1) as f64;
        let width = 0.8 / k;
        for (s, (name, values)) in self.series.iter().enumerate() {
            let color = palette(s);
            chart
                .draw_series(values.iter().enumerate().map(|(g, v)| {
                    let left = g as f64 - 0.4 + s as f64 * width;
                    let v = if v.is_finite() { *v } else { 0.0 };
                    Rectangle::new([(left, 0.0), (left + width, v)], color.filled())
                }))
                .map_err(drawing)?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        legend(&mut chart)
    }
}
