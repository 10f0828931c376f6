//! Plots drawn carefully: every axis says what it measures and in which unit, sizes and times
//! go on log scales, and every series has a legend entry.
//!
//! Two kinds of figure cover the course: a [`Chart`] of series against two axes (bandwidth or
//! time against message size, speed-up against workers) and a [`Timeline`] of which worker
//! ran which item when. Both are written as SVG, which every browser opens and which needs no
//! font library on the machine that draws it.
//!
//! ```
//! use mp::plot::{Axis, Chart, Series};
//!
//! let sizes = [1.0, 1024.0, 1048576.0];
//! let chart = Chart {
//!     title: "pipe round trip".into(),
//!     x: Axis::bytes("message size"),
//!     y: Axis::log("time [s]"),
//!     series: vec![
//!         Series::points("measured", sizes.iter().map(|&s| (s, 2e-5 + s / 1e9)).collect()),
//!         Series::line("model 20 us + s / (1 GB/s)", sizes.iter().map(|&s| (s, 2e-5 + s / 1e9)).collect()),
//!     ],
//! };
//! let svg = chart.to_svg()?;
//! assert!(svg.contains("message size [bytes]") && svg.contains("model 20 us"));
//! # Ok::<(), mp::Error>(())
//! ```

use std::{ops::Range, path::Path};

use plotters::{
    coord::{
        Shift,
        combinators::LogCoord,
        ranged1d::{AsRangedCoord, ValueFormatter},
    },
    prelude::*,
};

use crate::{Error, Result};

/// How values are spread along an axis.
///
/// ```
/// assert_eq!(mp::plot::Axis::log("time [s]").scale, mp::plot::Scale::Log);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Equal distances for equal differences.
    Linear,
    /// Equal distances for equal ratios (powers of ten); every value must be positive.
    Log,
    /// Log scale for byte counts: ticks at powers of 1024, labelled `1 B`, `1 KiB`, `1 MiB`...
    Bytes,
}

/// One axis: its label (with the unit, as in `time [s]`) and its scale.
///
/// ```
/// let axis = mp::plot::Axis::linear("workers");
/// assert_eq!(axis.label, "workers");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// What the axis measures, with the unit: `bandwidth [MB/s]` (MB = 10^6 bytes).
    pub label: String,
    /// Linear, log, or log for bytes.
    pub scale: Scale,
}

impl Axis {
    /// A linear axis.
    ///
    /// ```
    /// assert_eq!(mp::plot::Axis::linear("workers").scale, mp::plot::Scale::Linear);
    /// ```
    pub fn linear(label: impl Into<String>) -> Axis {
        Axis { label: label.into(), scale: Scale::Linear }
    }

    /// A logarithmic axis (base 10).
    ///
    /// ```
    /// assert_eq!(mp::plot::Axis::log("time [s]").scale, mp::plot::Scale::Log);
    /// ```
    pub fn log(label: impl Into<String>) -> Axis {
        Axis { label: label.into(), scale: Scale::Log }
    }

    /// A logarithmic axis of byte counts; the label gets ` [bytes]` appended.
    ///
    /// ```
    /// assert_eq!(mp::plot::Axis::bytes("message size").label, "message size [bytes]");
    /// ```
    pub fn bytes(label: &str) -> Axis {
        Axis { label: format!("{label} [bytes]"), scale: Scale::Bytes }
    }
}

/// How a series is drawn.
///
/// ```
/// assert_eq!(mp::plot::Series::dashed("model", vec![]).style, mp::plot::Style::Dashed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Points joined by straight lines, with a marker on each point.
    Line,
    /// Markers only: measurements.
    Points,
    /// A dashed line without markers: a model or a limit.
    Dashed,
}

/// One named set of points.
///
/// ```
/// let s = mp::plot::Series::line("pipe", vec![(1.0, 2.0), (2.0, 3.0)]);
/// assert_eq!((s.name.as_str(), s.points.len()), ("pipe", 2));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// `(x, y)` pairs, in the order they are joined.
    pub points: Vec<(f64, f64)>,
    /// How the series is drawn.
    pub style: Style,
}

impl Series {
    /// A line through the points, with markers.
    ///
    /// ```
    /// assert_eq!(mp::plot::Series::line("a", vec![]).style, mp::plot::Style::Line);
    /// ```
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points, style: Style::Line }
    }

    /// Markers only.
    ///
    /// ```
    /// assert_eq!(mp::plot::Series::points("a", vec![]).style, mp::plot::Style::Points);
    /// ```
    pub fn points(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points, style: Style::Points }
    }

    /// A dashed line: a model or a limit.
    ///
    /// ```
    /// assert_eq!(mp::plot::Series::dashed("memcpy", vec![]).name, "memcpy");
    /// ```
    pub fn dashed(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points, style: Style::Dashed }
    }
}

/// A chart of one or more series against two axes.
///
/// ```
/// use mp::plot::{Axis, Chart, Series};
///
/// let chart = Chart {
///     title: "speed-up".into(),
///     x: Axis::linear("workers"),
///     y: Axis::linear("speed-up [serial time / parallel time]"),
///     series: vec![Series::line("Pool.map", vec![(1.0, 1.0), (2.0, 1.9)])],
/// };
/// let path = std::env::temp_dir().join("mp-doc-speedup.svg");
/// chart.write_svg(&path)?;
/// assert!(std::fs::read_to_string(&path)?.starts_with("<svg"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// The caption above the chart.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    /// What is drawn, in legend order.
    pub series: Vec<Series>,
}

impl Chart {
    /// Draws the chart as an SVG document.
    ///
    /// Fails with [`Error::InvalidArgument`] when there is nothing to draw, a value is not
    /// finite, or a value on a log axis is not positive.
    ///
    /// ```
    /// use mp::plot::{Axis, Chart, Series};
    /// let chart = Chart {
    ///     title: "t".into(),
    ///     x: Axis::log("size"),
    ///     y: Axis::linear("time [s]"),
    ///     series: vec![Series::line("zero size", vec![(0.0, 1.0)])],
    /// };
    /// assert!(chart.to_svg().unwrap_err().to_string().contains("log"));
    /// ```
    pub fn to_svg(&self) -> Result<String> {
        let points: Vec<(f64, f64)> = self.series.iter().flat_map(|s| s.points.clone()).collect();
        if points.is_empty() {
            return Err(Error::invalid(format!(
                "the chart `{}` has no points to draw",
                self.title
            )));
        }
        let x_range = data_range(points.iter().map(|p| p.0), &self.x)?;
        let y_range = data_range(points.iter().map(|p| p.1), &self.y)?;
        let legend = self.legend_corner(&x_range, &y_range);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_error)?;
            match (self.x.scale, self.y.scale) {
                (Scale::Linear, Scale::Linear) => self.draw(&root, x_range, y_range, legend),
                (Scale::Linear, y_scale) => {
                    self.draw(&root, x_range, log_range(y_range, y_scale), legend)
                }
                (x_scale, Scale::Linear) => {
                    self.draw(&root, log_range(x_range, x_scale), y_range, legend)
                }
                (x_scale, y_scale) => {
                    let (x, y) = (log_range(x_range, x_scale), log_range(y_range, y_scale));
                    self.draw(&root, x, y, legend)
                }
            }?;
            root.present().map_err(draw_error)?;
        }
        Ok(svg)
    }

    /// Draws the chart into an SVG file, creating or replacing it.
    ///
    /// ```
    /// use mp::plot::{Axis, Chart, Series};
    /// let chart = Chart {
    ///     title: "t".into(),
    ///     x: Axis::linear("x"),
    ///     y: Axis::linear("y"),
    ///     series: vec![Series::points("p", vec![(1.0, 1.0)])],
    /// };
    /// let error = chart.write_svg("/no/such/dir/plot.svg".as_ref()).unwrap_err();
    /// assert!(error.to_string().contains("/no/such/dir/plot.svg"));
    /// ```
    pub fn write_svg(&self, path: &Path) -> Result<()> {
        write_file(path, &self.to_svg()?)
    }

    /// The corner whose area the series cross least, for the legend.
    fn legend_corner(&self, x: &Range<f64>, y: &Range<f64>) -> SeriesLabelPosition {
        let fraction = |value: f64, range: &Range<f64>, scale: Scale| {
            if scale == Scale::Linear {
                (value - range.start) / (range.end - range.start)
            } else {
                (value.ln() - range.start.ln()) / (range.end.ln() - range.start.ln())
            }
        };
        // Upper left, upper right, lower left, lower right.
        let mut crossings = [0usize; 4];
        for series in &self.series {
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .map(|&(px, py)| (fraction(px, x, self.x.scale), fraction(py, y, self.y.scale)))
                .collect();
            // Sample along each segment too: a two-point line crosses everything between.
            let segments = points.windows(2).map(|w| (w[0], w[1]));
            let samples = points.iter().copied().chain(segments.flat_map(|(a, b)| {
                (1..16).map(move |k| {
                    let t = f64::from(k) / 16.0;
                    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
                })
            }));
            for (fx, fy) in samples {
                let (left, right) = (fx < 0.45, fx > 0.55);
                let (top, bottom) = (fy > 0.6, fy < 0.4);
                crossings[0] += usize::from(top && left);
                crossings[1] += usize::from(top && right);
                crossings[2] += usize::from(bottom && left);
                crossings[3] += usize::from(bottom && right);
            }
        }
        let corners = [
            SeriesLabelPosition::UpperLeft,
            SeriesLabelPosition::UpperRight,
            SeriesLabelPosition::LowerLeft,
            SeriesLabelPosition::LowerRight,
        ];
        let emptiest = (0..4).min_by_key(|&i| crossings[i]).unwrap_or(0);
        corners[emptiest].clone()
    }

    fn draw<X, Y>(
        &self,
        root: &DrawingArea<SVGBackend<'_>, Shift>,
        x: X,
        y: Y,
        legend: SeriesLabelPosition,
    ) -> Result<()>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(84)
            .build_cartesian_2d(x, y)
            .map_err(draw_error)?;
        let x_scale = self.x.scale;
        let y_scale = self.y.scale;
        chart
            .configure_mesh()
            .x_desc(&self.x.label)
            .y_desc(&self.y.label)
            .x_label_formatter(&|v| tick_label(*v, x_scale))
            .y_label_formatter(&|v| tick_label(*v, y_scale))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(draw_error)?;
        for (index, series) in self.series.iter().enumerate() {
            let color = series_color(index);
            let points = series.points.clone();
            let anno = match series.style {
                Style::Line => {
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(draw_error)?;
                    chart.draw_series(LineSeries::new(points, color.stroke_width(2)))
                }
                Style::Points => {
                    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                }
                Style::Dashed => {
                    chart.draw_series(DashedLineSeries::new(points, 8, 5, color.stroke_width(2)))
                }
            }
            .map_err(draw_error)?;
            anno.label(&series.name).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        }
        chart
            .configure_series_labels()
            .position(legend)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(draw_error)?;
        Ok(())
    }
}

/// One bar of a [`Timeline`]: an item that ran on one row (a worker) from `start` to `end`.
///
/// ```
/// let bar = mp::plot::Bar { row: 0, start: 0.0, end: 1.5, label: "item 3".into() };
/// assert_eq!(bar.end - bar.start, 1.5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Which row (index into [`Timeline::rows`]).
    pub row: usize,
    /// When it started, in the unit of the time axis.
    pub start: f64,
    /// When it ended, in the unit of the time axis.
    pub end: f64,
    /// Written inside the bar (for example the item's index).
    pub label: String,
}

/// Which worker ran which item when: one row per worker, one bar per item.
///
/// ```
/// use mp::plot::{Bar, Timeline};
///
/// let timeline = Timeline {
///     title: "Pool(2).map, chunksize 1".into(),
///     time_label: "time since the map started [ms]".into(),
///     rows: vec!["worker 0".into(), "worker 1".into()],
///     bars: vec![
///         Bar { row: 0, start: 0.0, end: 2.0, label: "0".into() },
///         Bar { row: 1, start: 0.1, end: 4.0, label: "1".into() },
///     ],
/// };
/// assert!(timeline.to_svg()?.contains("worker 1"));
/// # Ok::<(), mp::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The caption above the chart.
    pub title: String,
    /// The time axis label, with the unit: `time since the map started [ms]`.
    pub time_label: String,
    /// The row names, top to bottom.
    pub rows: Vec<String>,
    /// The bars.
    pub bars: Vec<Bar>,
}

impl Timeline {
    /// Draws the timeline as an SVG document.
    ///
    /// Fails with [`Error::InvalidArgument`] when there are no rows, a bar names a row that
    /// does not exist, or a bar ends before it starts.
    ///
    /// ```
    /// let empty = mp::plot::Timeline {
    ///     title: "t".into(),
    ///     time_label: "time [s]".into(),
    ///     rows: vec![],
    ///     bars: vec![],
    /// };
    /// assert!(empty.to_svg().is_err());
    /// ```
    pub fn to_svg(&self) -> Result<String> {
        if self.rows.is_empty() {
            return Err(Error::invalid(format!("the timeline `{}` has no rows", self.title)));
        }
        for bar in &self.bars {
            if bar.row >= self.rows.len() {
                return Err(Error::invalid(format!(
                    "a bar is on row {} but the timeline has only {} rows",
                    bar.row,
                    self.rows.len()
                )));
            }
            if !(bar.start.is_finite() && bar.end.is_finite() && bar.start <= bar.end) {
                return Err(Error::invalid(format!(
                    "the bar `{}` runs from {} to {}: it must start before it ends",
                    bar.label, bar.start, bar.end
                )));
            }
        }
        let end = self.bars.iter().map(|b| b.end).fold(0.0, f64::max);
        let end = if end > 0.0 { end * 1.02 } else { 1.0 };
        let n_rows = self.rows.len();
        let height = 140 + 56 * n_rows as u32;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (1000, height)).into_drawing_area();
            root.fill(&WHITE).map_err(draw_error)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(&self.title, ("sans-serif", 24))
                .margin(16)
                .x_label_area_size(56)
                .y_label_area_size(190)
                .build_cartesian_2d(0.0..end, 0.0..n_rows as f64)
                .map_err(draw_error)?;
            let rows = self.rows.clone();
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n_rows * 2 + 1)
                .y_label_formatter(&|v| row_label(*v, &rows))
                .x_desc(&self.time_label)
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 17))
                .draw()
                .map_err(draw_error)?;
            for (index, bar) in self.bars.iter().enumerate() {
                // Row 0 at the top, as a reader scans a list of workers.
                let top = (n_rows - bar.row) as f64 - 0.15;
                let bottom = (n_rows - bar.row - 1) as f64 + 0.15;
                let color = series_color(index);
                chart
                    .draw_series([
                        Rectangle::new(
                            [(bar.start, top), (bar.end, bottom)],
                            color.mix(0.75).filled(),
                        ),
                        Rectangle::new(
                            [(bar.start, top), (bar.end, bottom)],
                            BLACK.stroke_width(1),
                        ),
                    ])
                    .map_err(draw_error)?;
                chart
                    .draw_series([Text::new(
                        bar.label.clone(),
                        (bar.start + (bar.end - bar.start) * 0.03, (top + bottom) / 2.0),
                        ("sans-serif", 13),
                    )])
                    .map_err(draw_error)?;
            }
            root.present().map_err(draw_error)?;
        }
        Ok(svg)
    }

    /// Draws the timeline into an SVG file, creating or replacing it.
    ///
    /// ```
    /// use mp::plot::{Bar, Timeline};
    /// let timeline = Timeline {
    ///     title: "one worker".into(),
    ///     time_label: "time [ms]".into(),
    ///     rows: vec!["worker 0".into()],
    ///     bars: vec![Bar { row: 0, start: 0.0, end: 1.0, label: "0".into() }],
    /// };
    /// let path = std::env::temp_dir().join("mp-doc-timeline.svg");
    /// timeline.write_svg(&path)?;
    /// # Ok::<(), mp::Error>(())
    /// ```
    pub fn write_svg(&self, path: &Path) -> Result<()> {
        write_file(path, &self.to_svg()?)
    }
}

/// Ten colours that stay apart from each other and readable on white, then round again.
fn series_color(index: usize) -> RGBAColor {
    const COLORS: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (214, 39, 40),
        (44, 160, 44),
        (255, 127, 14),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = COLORS[index % COLORS.len()];
    RGBColor(r, g, b).to_rgba()
}

fn write_file(path: &Path, svg: &str) -> Result<()> {
    std::fs::write(path, svg)
        .map_err(|e| Error::io(format!("could not write the plot to {}", path.display()), e))
}

fn draw_error<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> Error {
    Error::io("could not draw the plot", std::io::Error::other(error.to_string()))
}

/// The range the data spans, widened a little so no point sits on the frame.
fn data_range(values: impl Iterator<Item = f64>, axis: &Axis) -> Result<Range<f64>> {
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for value in values {
        if !value.is_finite() {
            return Err(Error::invalid(format!("the axis `{}` got the value {value}", axis.label)));
        }
        if axis.scale != Scale::Linear && value <= 0.0 {
            return Err(Error::invalid(format!(
                "the axis `{}` is on a log scale, which cannot show {value}: \
                 leave out points that are zero or negative",
                axis.label
            )));
        }
        low = low.min(value);
        high = high.max(value);
    }
    if axis.scale == Scale::Linear {
        let pad = if high > low { (high - low) * 0.05 } else { high.abs().max(1.0) * 0.5 };
        let low = if low >= 0.0 { (low - pad).max(0.0) } else { low - pad };
        return Ok(low..high + pad);
    }
    // Whole decades (or powers of two for bytes), so at least two ticks carry a label.
    let base: f64 = if axis.scale == Scale::Bytes { 2.0 } else { 10.0 };
    // A little room first, so no marker sits on the frame.
    let low = base.powf((low / 1.2).log(base).floor());
    let high = base.powf((high * 1.2).log(base).ceil());
    Ok(low..high.max(low * base))
}

fn log_range(range: Range<f64>, scale: Scale) -> LogCoord<f64> {
    // Byte counts read best at powers of two: 1 KiB, 4 KiB, 1 MiB.
    let base = if scale == Scale::Bytes { 2.0 } else { 10.0 };
    range.log_scale().base(base).into()
}

fn tick_label(value: f64, scale: Scale) -> String {
    if scale == Scale::Bytes {
        if value < 1.0 {
            return String::new(); // no such thing as half a byte
        }
        return format!("{:.0}", crate::units::Bytes(value.round() as u64));
    }
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-2..1e5).contains(&magnitude) {
        return format!("{value:.0e}");
    }
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn row_label(value: f64, rows: &[String]) -> String {
    // Labels sit at the middle of each row: n_rows - index - 0.5.
    let position = rows.len() as f64 - value - 0.5;
    let index = position.round();
    if (position - index).abs() > 1e-6 || index < 0.0 {
        return String::new();
    }
    rows.get(index as usize).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_keep_log_axes_positive_and_pad_linear_ones() {
        let log = data_range([16.0, 370.0].into_iter(), &Axis::log("t")).unwrap();
        assert!((log.start - 10.0).abs() < 1e-9 && (log.end - 1000.0).abs() < 1e-6);
        let bytes = data_range([1.0, 3e6].into_iter(), &Axis::bytes("s")).unwrap();
        assert!(bytes.start < 1.0 && (bytes.end - 4_194_304.0).abs() < 1e-3);
        let linear = data_range([2.0, 2.0].into_iter(), &Axis::linear("t")).unwrap();
        assert!(linear.start < 2.0 && linear.end > 2.0);
        assert!(data_range([f64::NAN].into_iter(), &Axis::linear("t")).is_err());
        assert!(data_range([-1.0].into_iter(), &Axis::bytes("s")).is_err());
    }

    #[test]
    fn tick_labels_are_short_and_byte_ticks_use_binary_units() {
        assert_eq!(tick_label(1e6, Scale::Log), "1e6");
        assert_eq!(tick_label(0.5, Scale::Linear), "0.5");
        assert_eq!(tick_label(20.0, Scale::Linear), "20");
        assert_eq!(tick_label(1_048_576.0, Scale::Bytes), "1 MiB");
        assert_eq!(tick_label(8.0, Scale::Bytes), "8 B");
        assert_eq!(tick_label(0.5, Scale::Bytes), "");
    }

    #[test]
    fn row_labels_sit_in_the_middle_of_their_rows() {
        let rows = vec!["a".to_string(), "b".to_string()];
        assert_eq!(row_label(1.5, &rows), "a");
        assert_eq!(row_label(0.5, &rows), "b");
        assert_eq!(row_label(1.0, &rows), "");
    }
}
