//! `Dockerfile.template` rendering: a Jinja2-compatible environment (minijinja) with docker-pkg's filters,
//! producing byte-for-byte what docker-pkg 4.0.4 produces.
//!
//! docker-pkg renders with `Environment(extensions=["jinja2.ext.do"], undefined=StrictUndefined)`, a
//! `FileSystemLoader(<image dir>)` and the whole merged config as context. The parts of that behaviour that
//! minijinja does not share by default are set up here: strict undefined values (`{% if x %}` fails too), no
//! auto-escaping whatever the file name, CRLF/CR line endings read as LF, Python's escapes in string literals
//! (`\<newline>` continues a line) and Python's way of printing `None`, `True`/`False`, lists and dicts.
//!
//! A render has a budget: minijinja's fuel bounds both the instructions a template runs and the data it
//! allocates ([`FUEL`]), and the output is bounded too ([`RENDERED_LIMIT`]), so a runaway template is an error
//! naming its file within seconds. Templates and included files are read as regular files within
//! [`files::TEMPLATE_LIMIT`], and never from outside the tree's root, even through a symbolic link.
//!
//! One [`Environment`] is shared by every image and thread of a run, so a render costs a file read, a compile
//! and an evaluation, nothing more. Templates are registered under a name that encodes both the image
//! directory and the path inside it (`<image dir>//<relative path>`): `{% include %}` then resolves against
//! the image directory of the including template, as with Jinja2's `FileSystemLoader`, whatever directory
//! the including file itself lives in. Loaded templates stay cached for the life of the engine.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value, context};

use crate::config::Config;
use crate::definition::version;
use crate::files;
use crate::reference::Parts;

/// The render budget, in minijinja fuel (about one unit per instruction, or per 64 bytes allocated): real
/// templates use a few thousand; a million runs in well under a second and allocates at most about 64 MB.
pub const FUEL: u64 = 1_000_000;

/// The largest rendered Dockerfile (real ones are a few KiB).
pub const RENDERED_LIMIT: usize = 4 << 20;

/// The file rendered in each image directory.
const TEMPLATE_FILE: &str = "Dockerfile.template";

/// Separates the image directory from the path inside it in template names (normalized paths never
/// contain it otherwise).
const ROOT_MARK: &str = "//";

/// docker-pkg's `apt_install` template (`dockerfile.py`), verbatim.
const APT_INSTALL: &str = r#"
{%- if apt_only_proxy -%}
echo 'Acquire::http::Proxy "{{ apt_only_proxy }}";' > /etc/apt/apt.conf.d/80_proxy \
    && apt-get update {{ apt_options }} \
{%- else -%}
apt-get update {{ apt_options }} \
{%- endif %}
    && DEBIAN_FRONTEND=noninteractive \
    apt-get install {{ apt_options }} --yes {{ packages }} --no-install-recommends \
{%- if apt_only_proxy %}
    && rm -f /etc/apt/apt.conf.d/80_proxy \
{%- endif %}
    && apt-get clean && rm -rf /var/lib/apt/lists/* "#;

/// docker-pkg's `apt_remove` template, verbatim. With a proxy its whitespace control glues `\` and
/// `apt-get update` into `\apt-get update`; that is kept for parity (the shell reads `\a` as `a`).
const APT_REMOVE: &str = r#"
{%- if apt_only_proxy -%}
echo 'Acquire::http::Proxy "{{ apt_only_proxy }}";' > /etc/apt/apt.conf.d/80_proxy  && \
{%- endif -%}
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get remove --yes --purge {{ packages }} \
{%- if apt_only_proxy %}
    && rm -f /etc/apt/apt.conf.d/80_proxy \
{%- endif %}
    && apt-get clean && rm -rf /var/lib/apt/lists/* "#;

/// Renders the templates of one tree; shared by all images (and threads) of a run.
#[derive(Debug)]
pub struct TemplateEngine {
    env: Environment<'static>,
    /// The config as template variables, converted once.
    context: Value,
    /// The tree's root, canonical.
    root: PathBuf,
}

/// A template that cannot be rendered.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct TemplateError {
    /// The template file (or included file) at fault.
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Marks errors raised by our own filters, whose detail is already a complete message.
#[derive(Debug, thiserror::Error)]
#[error("docker-pkg filter error")]
struct FilterError;

fn filter_error(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message).with_source(FilterError)
}

impl TemplateEngine {
    /// `known_images` are the full references `image_tag` can resolve to: the tree's labels and `base_images`,
    /// in that order (the first match wins). `root` is the tree's root, already canonical: no template file is
    /// read from outside it.
    pub fn new(config: &Config, known_images: Vec<String>, root: &Path) -> Self {
        let context = Value::from(minijinja::value::Serde(&config.template_vars));
        let mut env = python_like_env();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        let root = root.to_owned();
        let loader_root = root.clone();
        env.set_loader(move |name| load_template(&loader_root, name));
        env.set_path_join_callback(join_template_path);

        let config = Arc::new(config.clone());
        // Repository -> known image, looked up once per `image_tag` (a linear scan per call is quadratic in the
        // size of the tree). The first known image of each repository is kept.
        let mut by_repository = HashMap::new();
        for known in known_images {
            let parts = Parts::of(&known);
            if parts.tag.is_some() {
                by_repository.entry(parts.repository.to_owned()).or_insert_with(|| known.clone());
            }
        }
        {
            let config = Arc::clone(&config);
            env.add_filter("image_tag", move |name: Value| image_tag(&config, &by_repository, &name));
        }
        env.add_filter("upstream_version", |image: Value| upstream_version(&string_input("upstream_version", &image)?));
        {
            let config = Arc::clone(&config);
            env.add_filter("uid", move |user: Value| Ok::<_, Error>(uid(&config, &string_input("uid", &user)?)));
        }
        env.add_filter("add_user", move |user: Value| add_user(&config, &string_input("add_user", &user)?));

        // The apt filters render nested templates of their own, with Jinja2's default (lenient) undefined.
        let mut apt = python_like_env();
        for (name, source) in [("apt_install", APT_INSTALL), ("apt_remove", APT_REMOVE)] {
            if let Err(err) = apt.add_template(name, source) {
                unreachable!("docker-pkg's {name} template does not compile: {err}");
            }
        }
        let apt = Arc::new(apt);
        {
            let (apt, context) = (Arc::clone(&apt), context.clone());
            env.add_filter("apt_install", move |packages: Value| {
                // As docker-pkg: newline-separated package lists become space-separated.
                let packages = string_input("apt_install", &packages)?.replace('\n', " ");
                render_apt(&apt, "apt_install", Value::from(packages), &context)
            });
        }
        {
            let context = context.clone();
            env.add_filter("apt_remove", move |packages: Value| {
                if packages.is_undefined() {
                    return Err(undefined_input("apt_remove"));
                }
                render_apt(&apt, "apt_remove", packages, &context)
            });
        }
        Self { env, context, root }
    }

    /// Renders `<image_dir>/Dockerfile.template` exactly as docker-pkg does.
    pub fn render(&self, image_dir: &Path) -> Result<String, TemplateError> {
        self.render_with_sources(image_dir).0
    }

    /// [`TemplateEngine::render`], and the files the render read (the template and what it included,
    /// canonical), whether it succeeded or not: what `--since` compares with a git revision.
    pub fn render_with_sources(&self, image_dir: &Path) -> (Result<String, TemplateError>, Vec<PathBuf>) {
        READ.with(|read| read.borrow_mut().clear());
        let rendered = self.render_once(image_dir);
        (rendered, READ.with(|read| std::mem::take(&mut *read.borrow_mut())))
    }

    fn render_once(&self, image_dir: &Path) -> Result<String, TemplateError> {
        let main_path = image_dir.join(TEMPLATE_FILE);
        let root: PathBuf = image_dir.components().collect();
        let Some(root) = root.to_str() else {
            return Err(TemplateError { path: main_path, line: None, message: "the path is not valid UTF-8".into() });
        };
        let name = format!("{root}{ROOT_MARK}{TEMPLATE_FILE}");
        // The main template is compiled for this render only: caching it in the environment would keep every
        // image's compiled template alive for the whole run (most of the memory of a 10,000-image `graph`).
        let source = match load_template(&self.root, &name) {
            Ok(Some(source)) => source,
            Ok(None) => {
                return Err(TemplateError {
                    path: main_path,
                    line: None,
                    message: "cannot read template: no such file".into(),
                });
            }
            Err(err) => return Err(TemplateError { path: main_path, line: None, message: error_message(&err) }),
        };
        let template =
            self.env.template_from_named_str(&name, &source).map_err(|err| render_error(&err, &main_path))?;
        let mut out = BoundedOutput { text: String::new(), overflow: false };
        match template.render_captured_to(self.context.clone(), &mut out) {
            Ok(_) => Ok(out.text),
            Err(_) if out.overflow => Err(TemplateError {
                path: main_path,
                line: None,
                message: format!("the rendered Dockerfile is larger than {} MiB", RENDERED_LIMIT >> 20),
            }),
            Err(err) => Err(render_error(&err, &main_path)),
        }
    }
}

/// Collects a render's output, refusing more than [`RENDERED_LIMIT`] bytes.
struct BoundedOutput {
    text: String,
    overflow: bool,
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + bytes.len() > RENDERED_LIMIT {
            self.overflow = true;
            return Err(std::io::Error::other("the rendered Dockerfile is too large"));
        }
        // minijinja writes whole UTF-8 strings; anything else would be a bug there, not input to recover from.
        let text = std::str::from_utf8(bytes).map_err(std::io::Error::other)?;
        self.text.push_str(text);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An environment that behaves like a default Jinja2 one: no auto-escaping, Python's printing of values.
fn python_like_env() -> Environment<'static> {
    let mut env = Environment::new();
    // Debug mode makes undefined-value errors name the variable; it costs nothing until an error.
    env.set_debug(true);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(python_formatter);
    env
}

thread_local! {
    /// The files the render running on this thread has read: a render runs on one thread from start to end.
    static READ: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Loads `<image dir>//<relative path>`. A missing file is "not found" (so `ignore missing` works); `..`
/// segments are refused, as by Jinja2's `FileSystemLoader`. Only regular files inside `root` are read.
fn load_template(root: &Path, name: &str) -> Result<Option<String>, Error> {
    let Some((dir, relative)) = name.rsplit_once(ROOT_MARK) else {
        return Ok(None);
    };
    if relative.is_empty() || relative.split('/').any(|segment| segment == "..") {
        return Ok(None);
    }
    let cannot_read =
        |why: &dyn std::fmt::Display| Error::new(ErrorKind::InvalidOperation, format!("cannot read {relative}: {why}"));
    let path = match files::confined(root, &Path::new(dir).join(relative)) {
        Ok(path) => path,
        Err(e) if e.is_absent() => return Ok(None),
        Err(e) => return Err(cannot_read(&e)),
    };
    READ.with(|read| read.borrow_mut().push(path.clone()));
    let bytes = match files::read(&path, files::TEMPLATE_LIMIT) {
        Ok(bytes) => bytes,
        Err(e) if e.is_absent() => return Ok(None),
        Err(e) => return Err(cannot_read(&e)),
    };
    let source = String::from_utf8(bytes).map_err(|_| cannot_read(&"not valid UTF-8"))?;
    // Jinja2 reads every line ending as `\n`.
    let source = if source.contains('\r') { source.replace("\r\n", "\n").replace('\r', "\n") } else { source };
    Ok(Some(python_string_escapes(&source).unwrap_or(source)))
}

/// Rewrites the escapes of string literals (inside `{{ }}` and `{% %}`) that Python reads differently from
/// minijinja into minijinja's spelling; `None` when there is nothing to rewrite.
///
/// Jinja2 decodes string literals with Python's `unicode-escape`: `\<newline>` is a line continuation (the
/// production corpus relies on it), `\a` and `\v` are control characters and `\/` stays as it is. A removed
/// newline is put back after the closing quote, where whitespace means nothing, so line numbers stay right.
fn python_string_escapes(source: &str) -> Option<String> {
    if !source.contains('\\') {
        return None;
    }
    let mut rewriter = Rewriter { source, out: String::new(), copied: 0 };
    let bytes = source.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        i = match (bytes[i], bytes[i + 1]) {
            (b'{', b'#') => find(source, i + 2, "#}").map_or(bytes.len(), |end| end + 2),
            (b'{', b'%') if block_tag_name(source, i).is_some_and(|(name, _)| name == "raw") => {
                skip_raw_block(source, i)
            }
            (b'{', b'{') => rewriter.tag(i + 2, "}}"),
            (b'{', b'%') => rewriter.tag(i + 2, "%}"),
            _ => i + 1,
        };
    }
    rewriter.finish()
}

/// Copies `source` to `out` with some spans replaced; `copied` is where the unreplaced rest starts.
struct Rewriter<'s> {
    source: &'s str,
    out: String,
    copied: usize,
}

impl Rewriter<'_> {
    fn replace(&mut self, start: usize, end: usize, replacement: &str) {
        self.out.push_str(&self.source[self.copied..start]);
        self.out.push_str(replacement);
        self.copied = end;
    }

    /// Scans the tag whose content starts at `start`; returns the offset after its end delimiter.
    fn tag(&mut self, start: usize, end_delimiter: &str) -> usize {
        let bytes = self.source.as_bytes();
        // Brackets are balanced first, so that `{{ {'a': {}} }}` does not end at the first `}}`.
        let mut depth = 0usize;
        let mut j = start;
        while j < bytes.len() {
            match bytes[j] {
                quote @ (b'\'' | b'"') => j = self.string(j, quote),
                b'(' | b'[' | b'{' => {
                    depth += 1;
                    j += 1;
                }
                _ if depth == 0 && bytes[j..].starts_with(end_delimiter.as_bytes()) => return j + 2,
                b')' | b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    j += 1;
                }
                _ => j += 1,
            }
        }
        j
    }

    /// Rewrites the string literal opened at `start`; returns the offset after its closing quote.
    fn string(&mut self, start: usize, quote: u8) -> usize {
        let bytes = self.source.as_bytes();
        let mut newlines = 0;
        let mut j = start + 1;
        while j < bytes.len() && bytes[j] != quote {
            if bytes[j] != b'\\' || j + 1 == bytes.len() {
                j += 1;
                continue;
            }
            match bytes[j + 1] {
                b'\n' => {
                    newlines += 1;
                    self.replace(j, j + 2, "");
                }
                b'a' => self.replace(j, j + 2, "\\x07"),
                b'v' => self.replace(j, j + 2, "\\x0b"),
                b'/' => self.replace(j, j + 2, "\\\\/"),
                _ => {}
            }
            j += 2;
        }
        // The removed newlines go after the closing quote (or at the end, for a string that never closes).
        if newlines > 0 {
            let after = (j + 1).min(bytes.len());
            self.replace(after, after, &"\n".repeat(newlines));
        }
        j + 1
    }

    fn finish(mut self) -> Option<String> {
        if self.copied == 0 {
            return None;
        }
        self.out.push_str(&self.source[self.copied..]);
        Some(self.out)
    }
}

fn find(source: &str, from: usize, needle: &str) -> Option<usize> {
    source.get(from..)?.find(needle).map(|offset| from + offset)
}

/// The statement name of the block tag at `start` (`{%- raw -%}` gives `raw`) and the offset after it,
/// when the tag holds nothing but that name.
fn block_tag_name(source: &str, start: usize) -> Option<(&str, usize)> {
    let end = find(source, start + 2, "%}")?;
    let inner = source[start + 2..end].trim_start_matches(['-', '+']).trim_end_matches(['-', '+']).trim();
    (!inner.is_empty() && inner.bytes().all(|b| b.is_ascii_alphabetic())).then_some((inner, end + 2))
}

/// The offset after the `{% endraw %}` that closes the raw block opened at `start`.
fn skip_raw_block(source: &str, start: usize) -> usize {
    let mut at = block_tag_name(source, start).map_or(source.len(), |(_, after)| after);
    while let Some(tag) = find(source, at, "{%") {
        match block_tag_name(source, tag) {
            Some(("endraw", after)) => return after,
            _ => at = tag + 2,
        }
    }
    source.len()
}

/// Resolves an included name against the image directory of the including template, as Jinja2's
/// `FileSystemLoader` does: relative to the loader root, `.` and empty segments ignored.
fn join_template_path<'s>(name: &'s str, parent: &'s str) -> Cow<'s, str> {
    let root = parent.rsplit_once(ROOT_MARK).map_or("", |(root, _)| root);
    let relative: Vec<&str> = name.split('/').filter(|segment| !matches!(*segment, "" | ".")).collect();
    Cow::Owned(format!("{root}{ROOT_MARK}{}", relative.join("/")))
}

/// The file a template name stands for.
fn name_to_path(name: &str) -> Option<PathBuf> {
    name.rsplit_once(ROOT_MARK).map(|(root, relative)| Path::new(root).join(relative))
}

/// Turns a render error into a [`TemplateError`] located in the innermost template at fault.
fn render_error(err: &Error, main_path: &Path) -> TemplateError {
    let mut err = err;
    // Errors inside an included template come wrapped, once per include level.
    while err.kind() == ErrorKind::BadInclude {
        match std::error::Error::source(err).and_then(|source| source.downcast_ref::<Error>()) {
            Some(inner) => err = inner,
            None => break,
        }
    }
    let path = err.name().and_then(name_to_path).unwrap_or_else(|| main_path.to_owned());
    TemplateError { path, line: err.line(), message: error_message(err) }
}

fn error_message(err: &Error) -> String {
    let is_filter_error =
        std::error::Error::source(err).is_some_and(|source| source.downcast_ref::<FilterError>().is_some());
    let message = match err.detail() {
        Some(detail) if is_filter_error => detail.to_owned(),
        // Template names carry the root mark; show them as the paths they are.
        Some(detail) if err.kind() == ErrorKind::TemplateNotFound => {
            format!("{}: {}", err.kind(), detail.replace(ROOT_MARK, "/"))
        }
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    message.replace('\n', " ")
}

/// Prints values as Jinja2 (that is, Python's `str`) does.
fn python_formatter(out: &mut Output, _state: &mut State, value: &Value) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None | ValueKind::Bool | ValueKind::Seq | ValueKind::Map => out.write_str(&python_repr(value)),
        _ => write!(out, "{value}"),
    }
    .map_err(Error::from)
}

/// Python's `repr` of a value (for containers, Python's `str` is the `repr` of their items).
fn python_repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::None => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::String => python_string_repr(value.as_str().unwrap_or_default()),
        ValueKind::Seq => {
            let items: Vec<String> = value.try_iter().into_iter().flatten().map(|item| python_repr(&item)).collect();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .into_iter()
                .flatten()
                .map(|key| {
                    let item = value.get_item(&key).unwrap_or_default();
                    format!("{}: {}", python_repr(&key), python_repr(&item))
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => value.to_string(),
    }
}

fn python_string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn undefined_input(filter: &str) -> Error {
    Error::new(ErrorKind::UndefinedError, format!("the input of {filter} is undefined"))
}

/// The string a filter needs; anything else fails, as the Python string methods docker-pkg calls do.
fn string_input(filter: &str, value: &Value) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(undefined_input(filter));
    }
    value.as_str().map(str::to_owned).ok_or_else(|| filter_error(format!("{filter}: expected a string, got {value}")))
}

/// The known image (full reference with tag) of short name `name`.
///
/// Deliberate fix over docker-pkg, which splits each known image on every `:` and skips those that do not
/// give exactly two parts: it can never resolve an image under a registry with a port (`localhost:5000`) nor
/// a tag with an epoch. Here a known image is split with [`Parts::of`]. As in docker-pkg, a known image
/// without a tag never matches; unlike its (unordered) set, the first match in the order given to
/// [`TemplateEngine::new`] wins.
fn image_tag(config: &Config, known_images: &HashMap<String, String>, name: &Value) -> Result<String, Error> {
    let wanted = config.repository(&string_input("image_tag", name)?);
    known_images
        .get(&wanted)
        .cloned()
        .ok_or_else(|| filter_error(format!("image_tag: image {wanted} not found in the tree or base_images")))
}

/// The Debian upstream version of the tag of `image` (`name:tag`).
///
/// The reference is split as in [`image_tag`] (docker-pkg requires exactly one `:`, which fails for the
/// references `image_tag` resolves under a registry with a port).
fn upstream_version(image: &str) -> Result<String, Error> {
    let Some(tag) = Parts::of(image).tag else {
        return Err(filter_error(format!("upstream_version({image}) -> no image name found in input")));
    };
    if !tag.contains('-') {
        return Ok(tag.to_owned());
    }
    // docker-pkg keeps the first two `-` components only (`1.0-1-20241211` -> `1.0-1`).
    let tag = match tag.match_indices('-').nth(1) {
        Some((second, _)) => &tag[..second],
        None => tag,
    };
    version::python_debian_upstream(tag)
        .map(str::to_owned)
        .ok_or_else(|| filter_error(format!("upstream_version: Invalid version string '{tag}'")))
}

/// The numeric uid of `user`, or the name itself when it is not mapped (docker-pkg also logs a warning).
fn uid(config: &Config, user: &str) -> String {
    config.known_uid_mappings.get(user).map_or_else(|| user.to_owned(), u64::to_string)
}

fn add_user(config: &Config, user: &str) -> Result<String, Error> {
    let id = uid(config, user);
    if id == user {
        return Err(filter_error(format!("add_user: No mapping found for user '{user}'")));
    }
    Ok(format!("groupadd -o -g {id} -r {user} && useradd -l -o -r -m -d /var/lib/{user} -g {user} -u {id} {user}"))
}

/// Renders docker-pkg's nested apt template `name` with `packages` and the config.
fn render_apt(apt: &Environment<'static>, name: &str, packages: Value, config: &Value) -> Result<String, Error> {
    apt.get_template(name)?.render(context! { packages => packages, ..config.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(yaml: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).unwrap();
        Config::load(Some(&path), None, None).unwrap()
    }

    /// Renders `template` (plus `extra` files) in a fresh image directory.
    fn render_with(
        config: &Config,
        known: &[&str],
        template: &str,
        extra: &[(&str, &str)],
    ) -> Result<String, TemplateError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TEMPLATE_FILE), template).unwrap();
        for (name, text) in extra {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let root = dir.path().canonicalize().unwrap();
        let engine = TemplateEngine::new(config, known.iter().map(|s| s.to_string()).collect(), &root);
        engine.render(&root).map_err(|mut err| {
            // Paths relative to the image directory keep the assertions short.
            err.path = err.path.strip_prefix(&root).unwrap().to_owned();
            err
        })
    }

    fn render(config: &Config, template: &str) -> String {
        render_with(config, &[], template, &[]).unwrap()
    }

    #[test]
    fn engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<TemplateEngine>();
    }

    #[test]
    fn apt_install_without_proxy() {
        let out = render(&Config::defaults(), "{{ 'curl vim\ngit' | apt_install }}");
        assert_eq!(
            out,
            "apt-get update  \\\n    && DEBIAN_FRONTEND=noninteractive \\\n    apt-get install  --yes curl vim git \
             --no-install-recommends \\\n    && apt-get clean && rm -rf /var/lib/apt/lists/* "
        );
    }

    #[test]
    fn apt_install_with_proxy_and_options() {
        let config = config("apt_only_proxy: http://p:3142\napt_options: -q\n");
        assert_eq!(
            render(&config, "{{ 'curl' | apt_install }}"),
            "echo 'Acquire::http::Proxy \"http://p:3142\";' > /etc/apt/apt.conf.d/80_proxy \\\n    && apt-get update -q \
             \\\n    && DEBIAN_FRONTEND=noninteractive \\\n    apt-get install -q --yes curl --no-install-recommends \\\n    \
             && rm -f /etc/apt/apt.conf.d/80_proxy \\\n    && apt-get clean && rm -rf /var/lib/apt/lists/* "
        );
    }

    #[test]
    fn apt_install_proxy_defaults_to_http_proxy() {
        let out = render(&config("http_proxy: http://h:8080\n"), "{{ 'curl' | apt_install }}");
        assert!(out.starts_with("echo 'Acquire::http::Proxy \"http://h:8080\";'"), "{out}");
    }

    #[test]
    fn apt_remove_both_ways() {
        let config_options = config("apt_options: -q\n");
        assert_eq!(
            render(&config_options, "{{ 'curl vim' | apt_remove }}"),
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get remove --yes --purge curl vim \\\n    \
             && apt-get clean && rm -rf /var/lib/apt/lists/* "
        );
        assert_eq!(
            render(&config("apt_only_proxy: P\n"), "{{ 'curl' | apt_remove }}"),
            "echo 'Acquire::http::Proxy \"P\";' > /etc/apt/apt.conf.d/80_proxy  && \\apt-get update && \
             DEBIAN_FRONTEND=noninteractive apt-get remove --yes --purge curl \\\n    && rm -f /etc/apt/apt.conf.d/80_proxy \
             \\\n    && apt-get clean && rm -rf /var/lib/apt/lists/* "
        );
    }

    #[test]
    fn uid_and_add_user() {
        let config = config("known_uid_mappings:\n  www-data: 33\n  somebody: 65533\n");
        assert_eq!(render(&config, "{{ 'www-data' | uid }}:{{ 'ghost' | uid }}"), "33:ghost");
        assert_eq!(
            render(&config, "{{ 'somebody' | add_user }}"),
            "groupadd -o -g 65533 -r somebody && useradd -l -o -r -m -d /var/lib/somebody -g somebody -u 65533 somebody"
        );
        let err = render_with(&config, &[], "RUN x\nRUN {{ 'ghost' | add_user }}", &[]).unwrap_err();
        assert_eq!((err.line, err.message.as_str()), (Some(2), "add_user: No mapping found for user 'ghost'"));
    }

    #[test]
    fn upstream_version_examples() {
        for (tag, expected) in [
            ("1.63.0-1", "1.63.0"),
            ("1.63.0-1-20241211", "1.63.0"),
            ("1.0-1-s2", "1.0"),
            ("1.0~rc1-1-s2", "1.0~rc1"),
            ("1.63.0", "1.63.0"),
            ("2:1.0-1", "1.0"),
            ("1.0-", "1.0-"),
        ] {
            assert_eq!(upstream_version(&format!("reg:5000/ns/foo:{tag}")).unwrap(), expected, "{tag}");
        }
        assert_eq!(render(&Config::defaults(), "{{ 'foo:1.0-1' | upstream_version }}"), "1.0");
        let err = upstream_version("foo").unwrap_err();
        assert_eq!(err.detail(), Some("upstream_version(foo) -> no image name found in input"));
        assert!(upstream_version("foo:1_0-1").is_err());
        assert!(upstream_version("foo:1:0-1").is_ok());
        assert!(upstream_version("foo:a:0-1").is_err());
    }

    #[test]
    fn image_tag_with_port_registry_and_epoch_tag() {
        let config = config("registry: localhost:5000\nnamespace: ns\n");
        let known = [
            "localhost:5000/ns/base",
            "localhost:5000/ns/foo:2:1.0-1",
            "localhost:5000/ns/bar:1.0",
            "localhost:5000/ns/foo:9",
        ];
        assert_eq!(
            render_with(&config, &known, "FROM {{ 'foo' | image_tag }}\nFROM {{ 'bar' | image_tag }}", &[]).unwrap(),
            "FROM localhost:5000/ns/foo:2:1.0-1\nFROM localhost:5000/ns/bar:1.0"
        );
        // A known image without a tag never matches.
        let err = render_with(&config, &known, "\n{{ 'base' | image_tag }}", &[]).unwrap_err();
        assert_eq!(err.path, Path::new(TEMPLATE_FILE));
        assert_eq!(err.line, Some(2));
        assert_eq!(err.message, "image_tag: image localhost:5000/ns/base not found in the tree or base_images");
    }

    #[test]
    fn undefined_variables_fail_with_file_and_line() {
        let config = Config::defaults();
        let err = render_with(&config, &[], "FROM x\nRUN {{ not_defined }}\n", &[]).unwrap_err();
        assert_eq!((err.path.as_path(), err.line), (Path::new(TEMPLATE_FILE), Some(2)));
        assert!(err.message.contains("`not_defined` is undefined"), "{}", err.message);
        assert!(render_with(&config, &[], "{% if flag %}x{% endif %}", &[]).is_err());
        assert!(render_with(&config, &[], "{% for x in xs %}{% endfor %}", &[]).is_err());
        assert!(render_with(&config, &[], "{{ nope | apt_install }}", &[]).is_err());
        assert_eq!(render(&config, "{% if flag is defined %}x{% endif %}{{ flag | default('d') }}"), "d");
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = render_with(&Config::defaults(), &[], "FROM x\n\nRUN {{ a }\n", &[]).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(err.message.starts_with("syntax error: unexpected `}`"), "{}", err.message);
    }

    #[test]
    fn include_resolves_against_the_image_dir() {
        let config = config("namespace: ns\n");
        let files = [("sub/a.j2", "A{{ namespace }}{% include 'b.j2' %}"), ("b.j2", "B")];
        assert_eq!(render_with(&config, &[], "{% include './sub/a.j2' %}\n", &files).unwrap(), "AnsB");
        let files = [("sub/a.j2", "line 1\n{{ missing }}")];
        let err = render_with(&config, &[], "{% include 'sub/a.j2' %}", &files).unwrap_err();
        assert_eq!((err.path.as_path(), err.line), (Path::new("sub/a.j2"), Some(2)));
        let err = render_with(&config, &[], "x\n{% include 'nope.j2' %}", &[]).unwrap_err();
        assert_eq!((err.path.as_path(), err.line), (Path::new(TEMPLATE_FILE), Some(2)));
        assert!(err.message.contains("nope.j2"), "{}", err.message);
        assert!(render_with(&config, &[], "{% include '../x.j2' %}", &[]).is_err());
        assert_eq!(render_with(&config, &[], "a{% include 'nope.j2' ignore missing %}", &[]).unwrap(), "a");
    }

    #[test]
    fn statements_used_by_the_corpus() {
        let config = Config::defaults();
        // minijinja's `do` takes a call only, and its values are immutable (`xs.append(1)` cannot work).
        assert_eq!(render(&config, "a{% do range(3) %}b"), "ab");
        assert_eq!(render(&config, "{% set p | replace('\\n', ' ') %}a\nb{% endset %}{{ p ~ '!' }}"), "a b!");
        assert_eq!(render(&config, "{{ ['a', 'b'] | join(',') }}"), "a,b");
    }

    #[test]
    fn output_is_like_jinja2() {
        let config = config("custom: {a: [1, \"it's\"]}\nflag: true\n");
        // One trailing newline is dropped, CRLF is read as LF, None/True/dicts print as in Python.
        assert_eq!(render(&config, "a\r\nb\n\n"), "a\nb\n");
        assert_eq!(render(&config, "{{ http_proxy }} {{ flag }} {{ custom }}"), "None True {'a': [1, \"it's\"]}");
        assert_eq!(render(&config, "{{ '<&>' }}"), "<&>");
    }

    #[test]
    fn string_literals_use_python_escapes() {
        let config = Config::defaults();
        // A backslash-newline in a string literal is a line continuation; outside tags it is data.
        let template = "RUN a \\\n{{ \"x \\\n  y\" ~ '\\/' }} \\\n{% raw %}{{ '\\\n' }}{% endraw %}";
        assert_eq!(render(&config, template), "RUN a \\\nx   y\\/ \\\n{{ '\\\n' }}");
        let err = render_with(&config, &[], "{{ 'a\\\nb' }}\n{{ nope }}", &[]).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(render(&config, "{{ {'k': '\\a'}['k'] | length }}"), "1");
    }

    #[test]
    fn unreadable_templates_have_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let engine = TemplateEngine::new(&Config::defaults(), Vec::new(), dir.path());
        let err = engine.render(dir.path()).unwrap_err();
        assert_eq!((err.path, err.line), (dir.path().join(TEMPLATE_FILE), None));
        std::fs::write(dir.path().join(TEMPLATE_FILE), b"\xff\xfe").unwrap();
        let err = engine.render(dir.path()).unwrap_err();
        assert_eq!(err.line, None);
        assert!(err.message.contains("not valid UTF-8"), "{}", err.message);
    }

    #[test]
    fn context_is_the_template_vars() {
        let mut config = Config::defaults();
        config.template_vars = BTreeMap::from([("x".to_owned(), serde_json::json!("y"))]);
        assert_eq!(render(&config, "{{ x }}"), "y");
    }

    #[test]
    fn runaway_templates_run_out_of_budget() {
        let config = Config::defaults();
        let loops = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let started = std::time::Instant::now();
        let err = render_with(&config, &[], loops, &[]).unwrap_err();
        assert!(err.message.contains("ran out of fuel"), "{}", err.message);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
        let doubling = "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s }}{% endif %}{% endmacro %}\
                        {{ d('x', 40) }}";
        assert!(render_with(&config, &[], doubling, &[]).is_err());
        let wide = "{% for i in range(99999) %}{{ 'x' * 1000 }}{% endfor %}";
        assert!(render_with(&config, &[], wide, &[]).is_err());
        let recursive = "{% include 'Dockerfile.template' %}";
        assert!(render_with(&config, &[], recursive, &[]).is_err());
    }

    /// Found by the property test: a string that never closes kept the line continuation's newline out.
    #[test]
    fn an_unclosed_string_keeps_line_numbers() {
        assert_eq!(python_string_escapes("{%'\\\n").map(|s| s.matches('\n').count()), Some(1));
    }

    #[test]
    fn non_ascii_next_to_backslashes_is_fine() {
        // A pasted smart quote inside `{{ }}` once made the escape rewriter slice inside a character.
        let err =
            render_with(&Config::defaults(), &[], "RUN echo \"\\\\n\" {{ \u{2018}curl\u{2019} | apt_install }}", &[]);
        assert!(err.is_err());
        assert_eq!(render(&Config::defaults(), "{{ '\u{2018}\\\\' }}"), "\u{2018}\\");
    }

    #[test]
    fn includes_stay_inside_the_tree() {
        let config = Config::defaults();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let image = root.join("image");
        std::fs::create_dir(&image).unwrap();
        std::fs::write(root.join("shared.j2"), "shared").unwrap();
        std::os::unix::fs::symlink("../shared.j2", image.join("inside.j2")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", image.join("outside.j2")).unwrap();
        let fifo = std::ffi::CString::new(image.join("fifo.j2").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: mkfifo only reads the NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let engine = TemplateEngine::new(&config, Vec::new(), &root);
        let render = |template: &str| {
            std::fs::write(image.join(TEMPLATE_FILE), template).unwrap();
            engine.render(&image)
        };
        assert_eq!(render("{% include 'inside.j2' %}").unwrap(), "shared");
        let err = render("{% include 'outside.j2' %}").unwrap_err();
        assert!(err.message.contains("outside the tree"), "{}", err.message);
        let err = render("{% include 'fifo.j2' %}").unwrap_err();
        assert!(err.message.contains("not a regular file"), "{}", err.message);
        std::fs::remove_file(image.join(TEMPLATE_FILE)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", image.join(TEMPLATE_FILE)).unwrap();
        let err = engine.render(&image).unwrap_err();
        assert!(err.message.contains("outside the tree"), "{}", err.message);
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        const TOKENS: &[&str] = &[
            "{{",
            "}}",
            "{%",
            "%}",
            "{#",
            "#}",
            "'",
            "\"",
            "\\",
            "\\\n",
            "\\a",
            "\\/",
            "raw",
            "endraw",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "\u{2018}",
            "\u{1f600}",
            " | apt_install ",
        ];

        proptest! {
            #[test]
            fn escape_rewriting_never_panics_and_keeps_line_numbers(text in crate::fuzz::text(TOKENS)) {
                if let Some(rewritten) = python_string_escapes(&text) {
                    prop_assert_eq!(rewritten.matches('\n').count(), text.matches('\n').count());
                }
            }

            #[test]
            fn rendering_never_panics(text in crate::fuzz::text(TOKENS)) {
                let _ = render_with(&Config::defaults(), &["reg/base:1"], &text, &[]);
            }
        }
    }
}
