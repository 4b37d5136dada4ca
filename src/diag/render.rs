//! Rendering: miette's graphical report (code frame, labels, help) and the JSON form of
//! DESIGN §7.

use super::{Diagnostic, Severity, Sources};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;

/// How to draw reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderStyle {
    /// Unicode frames with ANSI colour (interactive terminals).
    Color,
    /// Unicode frames, no colour (NO_COLOR, pipes, snapshots).
    Plain,
}

/// miette's view of one diagnostic: the labels of the primary file plus the source text.
struct MietteView<'a> {
    diag: &'a Diagnostic,
    source: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    notes: Vec<String>,
}

impl fmt::Debug for MietteView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.diag)
    }
}

impl fmt::Display for MietteView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for MietteView<'_> {}

impl miette::Diagnostic for MietteView<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diag.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Note => miette::Severity::Advice,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        let mut text = String::new();
        if let Some(h) = &self.diag.help {
            text.push_str(h);
        }
        for n in &self.notes {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str("note: ");
            text.push_str(n);
        }
        if text.is_empty() {
            None
        } else {
            Some(Box::new(text))
        }
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        if self.labels.is_empty() {
            None
        } else {
            Some(&self.source)
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

fn view<'a>(diag: &'a Diagnostic, sources: &Sources) -> MietteView<'a> {
    let mut labels = Vec::new();
    let mut notes = diag.notes.clone();
    let (file, name, text) = match &diag.primary {
        Some(p) => {
            let f = sources.get(p.span.file);
            (
                Some(p.span.file),
                f.map(|f| f.name.clone()).unwrap_or_default(),
                f.map(|f| f.text.to_string()).unwrap_or_default(),
            )
        }
        None => (None, String::new(), String::new()),
    };
    let clamp = |s: super::Span| -> SourceSpan {
        let start = (s.start as usize).min(text.len());
        let end = (s.end as usize).min(text.len()).max(start);
        SourceSpan::from(start..end)
    };
    if let Some(p) = &diag.primary {
        let label = (!p.text.is_empty()).then(|| p.text.clone());
        labels.push(LabeledSpan::new_primary_with_span(label, clamp(p.span)));
    }
    for s in &diag.secondary {
        if Some(s.span.file) == file {
            let label = (!s.text.is_empty()).then(|| s.text.clone());
            labels.push(LabeledSpan::new_with_span(label, clamp(s.span)));
        } else {
            // A label in another file (a stdlib module) becomes a note with its location.
            let fname = sources
                .get(s.span.file)
                .map(|f| f.name.as_str())
                .unwrap_or("?");
            let (line, col) = sources.line_col(s.span.file, s.span.start);
            notes.push(format!("{} ({fname}:{line}:{col})", s.text));
        }
    }
    MietteView {
        diag,
        source: NamedSource::new(name, text),
        labels,
        notes,
    }
}

/// Renders one diagnostic as miette text.
pub fn render(diag: &Diagnostic, sources: &Sources, style: RenderStyle) -> String {
    let theme = match style {
        RenderStyle::Color => GraphicalTheme::unicode(),
        RenderStyle::Plain => GraphicalTheme::unicode_nocolor(),
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_urls(false);
    let v = view(diag, sources);
    let mut out = String::new();
    if handler.render_report(&mut out, &v).is_err() {
        out = format!("{diag}\n");
    }
    out
}

/// Renders all diagnostics, separated by blank lines.
pub fn render_all(diags: &[Diagnostic], sources: &Sources, style: RenderStyle) -> String {
    diags
        .iter()
        .map(|d| render(d, sources, style))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The JSON object of DESIGN §7's `diagnostics` array.
pub fn to_json(diag: &Diagnostic, sources: &Sources) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("code".into(), diag.code.as_str().into());
    obj.insert("severity".into(), diag.severity.as_str().into());
    obj.insert("message".into(), diag.message.clone().into());
    if let Some(p) = &diag.primary {
        let (line, col) = sources.line_col(p.span.file, p.span.start);
        let file = sources
            .get(p.span.file)
            .map(|f| f.name.clone())
            .unwrap_or_default();
        obj.insert("file".into(), file.into());
        obj.insert("line".into(), line.into());
        obj.insert("column".into(), col.into());
        if !p.text.is_empty() {
            obj.insert("label".into(), p.text.clone().into());
        }
    }
    if let Some(h) = &diag.help {
        obj.insert("help".into(), h.clone().into());
    }
    if !diag.notes.is_empty() {
        obj.insert("notes".into(), diag.notes.clone().into());
    }
    serde_json::Value::Object(obj)
}
