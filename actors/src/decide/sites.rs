//! The IMC facade's site catalogue and the pure steps of a placement that read it:
//! matching, ranking, the order flavours are tried in, and the template's
//! substitutions.

use std::collections::HashMap;

use infralog_events::domain::placement::{PlacementRequest, Usage};
use serde::Deserialize;

/// An image a site offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SiteImage {
    /// The site's name for it.
    pub name: String,
    /// Its URL (`disk.0.image.url`).
    pub url: String,
    /// `ubuntu`…
    pub distribution: String,
    /// `20.04`…
    pub version: String,
    /// `linux`…
    #[serde(rename = "type")]
    pub kind: String,
    /// `x86_64`…
    pub architecture: String,
}

/// A flavour (instance type) a site offers; memory and disk in GB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Flavour {
    /// Its name (`$instance`).
    pub name: String,
    /// CPU cores.
    pub cores: u64,
    /// Memory, GB.
    pub memory: u64,
    /// Disk, GB.
    pub disk: u64,
}

/// A site's static quotas per identity; `None`: unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SiteQuotas {
    /// Instances.
    pub instances: Option<u64>,
    /// CPU cores.
    pub cores: Option<u64>,
    /// Memory, GB.
    pub memory: Option<u64>,
}

impl SiteQuotas {
    /// Whether `usage` fits.
    pub fn admit(&self, usage: Usage) -> bool {
        let within = |limit: Option<u64>, used: u64| limit.is_none_or(|limit| used <= limit);
        within(self.instances, usage.instances)
            && within(self.cores, usage.cores)
            && within(self.memory, usage.memory)
    }
}

/// Failures a site simulates, for tests (the Dummy cloud never fails by itself).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SiteFaults {
    /// Every VM launch on the site fails with this message.
    pub launch: Option<String>,
    /// Every VM destruction on the site fails with this message.
    pub destroy: Option<String>,
    /// Every VM launch on the site takes this long first (an infralog addition, to
    /// test what happens while an attempt is under way).
    pub launch_delay_ms: Option<u64>,
}

impl SiteFaults {
    /// Whether any failure or delay is configured.
    pub fn any(&self) -> bool {
        self.launch.is_some() || self.destroy.is_some() || self.launch_delay_ms.is_some()
    }
}

/// One site of the catalogue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Site {
    /// Its name: the `id` of the cloud credential line.
    pub name: String,
    /// Its region.
    pub region: String,
    /// The connector kind (`Dummy`…): the credential line's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its images.
    pub images: Vec<SiteImage>,
    /// Its flavours.
    pub flavours: Vec<Flavour>,
    /// Its quotas per identity.
    pub quotas: SiteQuotas,
    /// The groups it serves.
    pub groups: Vec<String>,
    /// Its tags.
    pub tags: HashMap<String, String>,
    /// Failures it simulates.
    pub faults: SiteFaults,
}

/// A flavour and image to try on a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Try {
    /// The site's name.
    pub site: String,
    /// The flavour.
    pub flavour: Flavour,
    /// The image.
    pub image: SiteImage,
}

fn within(value: u64, least: Option<u64>, most: Option<u64>) -> bool {
    least.is_none_or(|least| value >= least) && most.is_none_or(|most| value <= most)
}

/// The flavours of `site` that fit the request's resources, in the order they are
/// tried: ascending (cores, memory, disk, name); unless all three maximums are
/// given, only the first of each initial letter is kept (IMC's rule, which tries
/// one flavour per family).
pub fn flavours_to_try<'a>(site: &'a Site, request: &PlacementRequest) -> Vec<&'a Flavour> {
    let r = &request.requirements.resources;
    let mut fitting: Vec<&Flavour> = site
        .flavours
        .iter()
        .filter(|f| {
            within(f.cores, r.cores, r.cores_max)
                && within(f.memory, r.memory, r.memory_max)
                && within(f.disk, r.disk, r.disk_max)
        })
        .collect();
    fitting.sort_by(|a, b| {
        (a.cores, a.memory, a.disk, &a.name).cmp(&(b.cores, b.memory, b.disk, &b.name))
    });
    if r.cores_max.is_some() && r.memory_max.is_some() && r.disk_max.is_some() {
        return fitting;
    }
    let mut seen = Vec::new();
    fitting.retain(|f| {
        let first = f.name.chars().next();
        if seen.contains(&first) {
            false
        } else {
            seen.push(first);
            true
        }
    });
    fitting
}

/// The first image of `site` that matches every image field the request gives.
pub fn image_for<'a>(site: &'a Site, request: &PlacementRequest) -> Option<&'a SiteImage> {
    let wanted = &request.requirements.image;
    let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    site.images.iter().find(|image| {
        same(&wanted.distribution, &image.distribution)
            && same(&wanted.version, &image.version)
            && same(&wanted.kind, &image.kind)
            && same(&wanted.architecture, &image.architecture)
    })
}

/// What `flavour` uses for the whole request.
pub fn usage_of(flavour: &Flavour, request: &PlacementRequest) -> Usage {
    Usage {
        instances: request.instances,
        cores: flavour.cores.saturating_mul(request.instances),
        memory: flavour.memory.saturating_mul(request.instances),
    }
}

/// Whether `site` passes the static checks: allowed site and region, an image, a
/// fitting flavour, a shared group, equal tags, and static quotas (with `held`
/// added: the identity's reservations, or nothing).
pub fn site_matches(site: &Site, request: &PlacementRequest, held: Usage) -> bool {
    let req = &request.requirements;
    let allowed = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
    allowed(&req.sites, &site.name)
        && allowed(&req.regions, &site.region)
        && image_for(site, request).is_some()
        && (req.groups.is_empty() || req.groups.iter().any(|g| site.groups.contains(g)))
        && req
            .tags
            .iter()
            .all(|(k, v)| site.tags.get(k).is_some_and(|have| have == v))
        && flavours_to_try(site, request)
            .iter()
            .any(|f| site.quotas.admit(held.plus(usage_of(f, request))))
}

/// The i-th of n preferences scores n − i; anything else scores 0.
fn preference(list: &[String], value: &str) -> f64 {
    list.iter()
        .position(|v| v == value)
        .map(|i| (list.len() - i) as f64)
        .unwrap_or(0.0)
}

/// The sites that match, best first: preference of region plus preference of site
/// plus 1000 × the site's recent success ratio; ties keep catalogue order.
pub fn rank<'a>(
    catalogue: &'a [Site],
    request: &PlacementRequest,
    held: &dyn Fn(&Site) -> Usage,
    success_ratio: &dyn Fn(&str) -> f64,
) -> Vec<&'a Site> {
    let prefs = &request.preferences;
    let mut scored: Vec<(f64, usize, &Site)> = catalogue
        .iter()
        .enumerate()
        .filter(|(_, site)| site_matches(site, request, held(site)))
        .map(|(index, site)| {
            let score = preference(&prefs.regions, &site.region)
                + preference(&prefs.sites, &site.name)
                + 1000.0 * success_ratio(&site.name);
            (score, index, site)
        })
        .collect();
    // Highest score first; the catalogue index breaks ties (a stable order, where
    // IMC shuffles).
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, _, site)| site).collect()
}

/// Every try of a round over the ranked `sites`, in order.
pub fn tries(sites: &[&Site], request: &PlacementRequest) -> Vec<Try> {
    let mut out = Vec::new();
    for site in sites {
        let Some(image) = image_for(site, request) else {
            continue;
        };
        for flavour in flavours_to_try(site, request) {
            out.push(Try {
                site: site.name.clone(),
                flavour: flavour.clone(),
                image: image.clone(),
            });
        }
    }
    out
}

/// The template with `$instance`, `$image`, `$cloud`, `$region` and
/// `$allow_groups` replaced, in both `$x` and `${x}` forms; any other `$` text is
/// left as written.
pub fn substitute(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    'scan: while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        for (name, value) in values {
            let braced = format!("{{{name}}}");
            if let Some(tail) = after.strip_prefix(braced.as_str()) {
                out.push_str(value);
                rest = tail;
                continue 'scan;
            }
            if let Some(tail) = after.strip_prefix(name) {
                // `$instances` is not `$instance`: the name must end there.
                let ends = tail
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
                if ends {
                    out.push_str(value);
                    rest = tail;
                    continue 'scan;
                }
            }
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The substitution names, for [`substitute`].
pub const TEMPLATE_NAMES: [&str; 5] = ["instance", "image", "cloud", "region", "allow_groups"];

#[cfg(test)]
mod tests {
    use super::*;
    use infralog_events::domain::placement::ResourceRequirement;

    fn flavour(name: &str, cores: u64, memory: u64, disk: u64) -> Flavour {
        Flavour {
            name: name.into(),
            cores,
            memory,
            disk,
        }
    }

    fn site(name: &str, region: &str) -> Site {
        Site {
            name: name.into(),
            region: region.into(),
            kind: "Dummy".into(),
            images: vec![SiteImage {
                name: "u".into(),
                url: "mock0://u".into(),
                distribution: "ubuntu".into(),
                version: "20.04".into(),
                kind: "linux".into(),
                architecture: "x86_64".into(),
            }],
            flavours: vec![
                flavour("m1.large", 4, 8, 80),
                flavour("m1.small", 1, 2, 20),
                flavour("c1.small", 1, 2, 20),
            ],
            quotas: SiteQuotas {
                instances: Some(2),
                ..SiteQuotas::default()
            },
            ..Site::default()
        }
    }

    fn request(instances: u64) -> PlacementRequest {
        PlacementRequest {
            instances,
            ..PlacementRequest::default()
        }
    }

    #[test]
    fn flavours_go_smallest_first_one_per_initial_unless_all_maximums_are_given() {
        let s = site("a", "eu");
        let names = |r: &PlacementRequest| -> Vec<String> {
            flavours_to_try(&s, r)
                .iter()
                .map(|f| f.name.clone())
                .collect()
        };
        assert_eq!(names(&request(1)), ["c1.small", "m1.small"]);
        let mut all = request(1);
        all.requirements.resources = ResourceRequirement {
            cores_max: Some(8),
            memory_max: Some(16),
            disk_max: Some(100),
            ..ResourceRequirement::default()
        };
        assert_eq!(names(&all), ["c1.small", "m1.small", "m1.large"]);
        let mut big = request(1);
        big.requirements.resources.cores = Some(2);
        assert_eq!(names(&big), ["m1.large"]);
    }

    #[test]
    fn quotas_regions_and_cores_decide_the_match() {
        let a = site("a", "eu");
        assert!(site_matches(&a, &request(2), Usage::default()));
        assert!(!site_matches(&a, &request(3), Usage::default()));
        let held = Usage {
            instances: 2,
            ..Usage::default()
        };
        assert!(!site_matches(&a, &request(1), held));
        let mut eu_only = request(1);
        eu_only.requirements.regions = vec!["us".into()];
        assert!(!site_matches(&a, &eu_only, Usage::default()));
        let mut too_big = request(1);
        too_big.requirements.resources.cores = Some(64);
        assert!(!site_matches(&a, &too_big, Usage::default()));
    }

    #[test]
    fn ranking_adds_preferences_and_success_and_keeps_catalogue_order_on_ties() {
        let catalogue = [site("a", "eu"), site("b", "us"), site("c", "us")];
        let none = |_: &Site| Usage::default();
        let names = |sites: Vec<&Site>| sites.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(rank(&catalogue, &request(1), &none, &|_| 0.0)),
            ["a", "b", "c"]
        );
        let mut prefer = request(1);
        prefer.preferences.sites = vec!["c".into(), "b".into()];
        assert_eq!(
            names(rank(&catalogue, &prefer, &none, &|_| 0.0)),
            ["c", "b", "a"]
        );
        assert_eq!(
            names(rank(&catalogue, &prefer, &none, &|s| if s == "a" {
                1.0
            } else {
                0.0
            })),
            ["a", "c", "b"]
        );
    }

    #[test]
    fn both_forms_are_substituted_and_other_dollars_stay() {
        let values = [("instance", "m1.small"), ("image", "mock0://u")];
        assert_eq!(
            substitute(
                "a = '$instance' b = '${image}' c = '$instances' d = '$HOME' e = $",
                &values
            ),
            "a = 'm1.small' b = 'mock0://u' c = '$instances' d = '$HOME' e = $"
        );
    }
}
