//! PNG charts of latency against offered rate (plotters, bitmap backend). Text is drawn
//! with ab_glyph from a TrueType file read at run time (DejaVu Sans by default), so no
//! fontconfig or system font lookup is involved; without a font the chart has no labels.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// Font files tried in order (Debian's fonts-dejavu-core, fonts-liberation).
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers a font for chart text; returns whether one was found.
pub fn init_font(extra: Option<&Path>) -> bool {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *DONE.get_or_init(|| {
        let candidates = extra
            .map(|p| p.to_path_buf())
            .into_iter()
            .chain(FONTS.iter().map(std::path::PathBuf::from));
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// One line: (offered rate, latency in ms) points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// 0 = first server colour, 1 = second.
    pub server: usize,
    pub dashed: bool,
}

/// Draws `series` with a logarithmic latency axis.
pub fn latency_chart(path: &Path, title: &str, x_label: &str, series: &[Series]) -> Result<()> {
    let labels = init_font(None);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let y_max = all.iter().map(|p| p.1).fold(1.0, f64::max).max(10.0) * 1.5;
    let y_min = all
        .iter()
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .clamp(0.01, 1.0)
        / 1.5;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if labels {
        builder
            .caption(title, ("sans-serif", 22))
            .x_label_area_size(45)
            .y_label_area_size(65);
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    let mut mesh = chart.configure_mesh();
    if labels {
        mesh.x_desc(x_label).y_desc("latency, ms (log)");
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw().map_err(|e| anyhow!("{e}"))?;
    let colours = [RGBColor(200, 60, 20), RGBColor(30, 90, 200)];
    for s in series {
        let colour = colours[s.server % 2];
        let style = if s.dashed {
            colour.stroke_width(1)
        } else {
            colour.stroke_width(3)
        };
        let pts: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x, y.max(y_min))).collect();
        let drawn = chart
            .draw_series(LineSeries::new(pts.clone(), style))
            .map_err(|e| anyhow!("{e}"))?;
        if labels {
            drawn
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| anyhow!("{e}"))?;
    }
    if labels {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
