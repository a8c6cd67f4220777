//! The body of `POST /v1/infrastructures`, checked into a [`PlacementRequest`].
//! Everything a placement needs is checked here, before anything is recorded: a
//! template that cannot become RADL is a 400, not a placement that fails later.

use base64::Engine;
use infralog_actors::decide::sites;
use infralog_events::domain::placement::{
    ImageRequirement, PlacementRequest, Preferences, Requirements, ResourceRequirement,
};
use serde_json::{Map, Value};

use crate::radl;

/// Values put in the template's places to check it; any plain word does.
const PLACEHOLDERS: [(&str, &str); 5] = [
    ("instance", "flavour"),
    ("image", "mock0://placeholder/image"),
    ("cloud", "site"),
    ("region", "region"),
    ("allow_groups", "group"),
];

/// What the body asks for, and whether it is a dry run.
pub struct Parsed {
    /// The checked request.
    pub request: PlacementRequest,
    /// `"dryrun": true`: rank the sites, record nothing.
    pub dry_run: bool,
}

fn text(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn texts(object: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("{key} must be a list of strings")),
            })
            .collect(),
        Some(_) => Err(format!("{key} must be a list of strings")),
    }
}

fn number(object: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .or_else(|| {
                // A whole float (`2.0`) is a count; a fraction is not.
                value
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| format!("{key} must be a whole number")),
    }
}

fn object<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(format!("{key} must be an object")),
    }
}

fn requirements(body: &Map<String, Value>) -> Result<Requirements, String> {
    let Some(req) = object(body, "requirements")? else {
        return Ok(Requirements::default());
    };
    let image = match object(req, "image")? {
        Some(image) => ImageRequirement {
            distribution: text(image, "distribution")?,
            version: text(image, "version")?,
            kind: text(image, "type")?,
            architecture: text(image, "architecture")?,
        },
        None => ImageRequirement::default(),
    };
    let resources = match object(req, "resources")? {
        Some(r) => ResourceRequirement {
            cores: number(r, "cores")?,
            memory: number(r, "memory")?,
            disk: number(r, "disk")?,
            cores_max: number(r, "coresMax")?,
            memory_max: number(r, "memoryMax")?,
            disk_max: number(r, "diskMax")?,
        },
        None => ResourceRequirement::default(),
    };
    let tags = match object(req, "tags")? {
        Some(tags) => tags
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err("tags must map names to strings".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok(Requirements {
        image,
        resources,
        regions: texts(req, "regions")?,
        sites: texts(req, "sites")?,
        groups: texts(req, "groups")?,
        tags,
    })
}

/// The RADL template: base64, UTF-8, and RADL once its places are filled; the
/// instances it deploys.
fn template(body: &Map<String, Value>) -> Result<(String, u64), String> {
    let encoded = match body.get("radl") {
        Some(Value::String(s)) => s,
        Some(_) => return Err("radl must be a base64 string".into()),
        None => return Err("radl is missing".into()),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "radl is not base64".to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "radl is not UTF-8 text".to_string())?;
    let filled = sites::substitute(&text, &PLACEHOLDERS);
    let parsed = radl::parse_body(&filled, radl::Format::Text)
        .map_err(|e| format!("radl is not valid RADL: {e}"))?;
    radl::storable::stored_text(&parsed).map_err(|e| format!("radl is not valid RADL: {e}"))?;
    let mut instances: u64 = 0;
    for deploy in &parsed.deploys {
        if parsed.system(&deploy.system).is_none() {
            return Err(format!(
                "radl deploys the undefined system {:?}",
                deploy.system
            ));
        }
        let count = deploy.count.as_i64().unwrap_or(0).max(0) as u64;
        instances = instances.saturating_add(count);
    }
    if instances == 0 {
        return Err("radl deploys no instance".into());
    }
    Ok((text, instances))
}

/// Checks a body.
pub fn parse(body: &[u8]) -> Result<Parsed, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    let Value::Object(body) = value else {
        return Err("the body is not a JSON object".into());
    };
    let (radl, instances) = template(&body)?;
    let preferences = match object(&body, "preferences")? {
        Some(p) => Preferences {
            regions: texts(p, "regions")?,
            sites: texts(p, "sites")?,
        },
        None => Preferences::default(),
    };
    let dry_run = match body.get("dryrun") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("dryrun must be true or false".into()),
    };
    Ok(Parsed {
        request: PlacementRequest {
            radl,
            requirements: requirements(&body)?,
            preferences,
            identity: text(&body, "identity")?,
            identifier: text(&body, "identifier")?,
            want: text(&body, "want")?,
            instances,
        },
        dry_run,
    })
}
