//! The document against the route tables.

use super::*;

#[test]
fn every_route_of_the_table_is_described_and_nothing_else() {
    let table: Vec<(&str, &str)> = all_routes().collect();
    for (method, template) in &table {
        assert!(
            description_of(method, template).is_some(),
            "{method} {template} is in the route table but not in the OpenAPI operations"
        );
    }
    for operation in operations::OPERATIONS.iter().chain(batch::BATCH_OPERATIONS) {
        assert!(
            table.contains(&(operation.method, operation.template)),
            "{} {} is described but not routed",
            operation.method,
            operation.template
        );
    }
    let document = document();
    for (method, template) in &table {
        assert!(
            document["paths"][template][method.to_ascii_lowercase()]["responses"].is_object(),
            "{method} {template}"
        );
    }
}

#[test]
fn every_imc_route_is_described_and_served_only_with_the_facade() {
    let routes = crate::facades::imc::handlers::ROUTES;
    for (method, template) in routes {
        assert!(
            imc::OPERATIONS
                .iter()
                .any(|op| op.method == *method && op.template == *template),
            "{method} {template} is an IMC route but not in the OpenAPI operations"
        );
    }
    for operation in imc::OPERATIONS {
        assert!(
            routes.contains(&(operation.method, operation.template)),
            "{} {} is described but not routed",
            operation.method,
            operation.template
        );
    }
    let with = document_for(true, false);
    for (method, template) in routes {
        let operation = &with["paths"][template][method.to_ascii_lowercase()];
        assert!(operation["responses"].is_object(), "{method} {template}");
    }
    assert_eq!(with["paths"]["/v1/health"]["get"]["security"], json!([]));
    assert_eq!(
        with["paths"]["/v1/infrastructures/{id}/events"]["get"]["security"],
        json!([{"imc": []}])
    );
    let without = document_for(false, false);
    assert!(without["paths"]["/v1/health"].is_null());
    assert_eq!(without, document());
}

#[test]
fn path_parameters_are_those_of_the_template() {
    for operation in operations::OPERATIONS
        .iter()
        .chain(imc::OPERATIONS)
        .chain(batch::BATCH_OPERATIONS)
        .chain(mlbench::OPERATIONS)
    {
        let mut in_template: Vec<&str> = operation
            .template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let mut described: Vec<&str> = operation
            .params
            .iter()
            .filter(|p| p.location == "path")
            .map(|p| p.name)
            .collect();
        in_template.sort_unstable();
        described.sort_unstable();
        assert_eq!(in_template, described, "{}", operation.template);
    }
}

#[test]
fn links_name_existing_operations() {
    let links = create_links();
    for (name, link) in links.as_object().expect("links") {
        let id = link["operationId"].as_str().expect("an id");
        let operation = operations::OPERATIONS
            .iter()
            .find(|op| operation_id(op.method, op.template) == id)
            .unwrap_or_else(|| panic!("{name}: no operation {id}"));
        for parameter in link["parameters"].as_object().expect("parameters").keys() {
            // `path.infid` or `infid`: the location is optional in a link.
            let (location, bare) = match parameter.split_once('.') {
                Some((location, bare)) => (Some(location), bare),
                None => (None, parameter.as_str()),
            };
            assert!(
                operation
                    .params
                    .iter()
                    .any(|p| p.name == bare && location.is_none_or(|l| l == p.location)),
                "{name}: {id} has no parameter {parameter}"
            );
        }
    }
}

#[test]
fn no_link_follows_a_create_with_its_eviction() {
    let links = create_links();
    assert_eq!(links["GetProperty"]["parameters"]["query.delete"], false);
}

#[test]
fn operation_ids_are_unique() {
    let mut ids: Vec<String> = operations::OPERATIONS
        .iter()
        .chain(imc::OPERATIONS)
        .chain(batch::BATCH_OPERATIONS)
        .chain(mlbench::OPERATIONS)
        .map(|op| operation_id(op.method, op.template))
        .collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count);
}

#[test]
fn every_mlbench_route_is_described_and_only_where_it_is_served() {
    let routes = crate::facades::mlbench::handlers::ROUTES;
    for (method, template) in routes {
        assert!(
            mlbench::OPERATIONS
                .iter()
                .any(|op| op.method == *method && op.template == *template),
            "{method} {template} is an MLBench route but not in the OpenAPI operations"
        );
    }
    for operation in mlbench::OPERATIONS {
        assert!(
            routes.contains(&(operation.method, operation.template)),
            "{} {} is described but not routed",
            operation.method,
            operation.template
        );
    }
    let with = document_for(false, true);
    for (method, template) in routes {
        let operation = &with["paths"][template][method.to_ascii_lowercase()];
        assert!(operation["responses"].is_object(), "{method} {template}");
        assert_eq!(operation["tags"], json!(["mlbench"]), "{method} {template}");
    }
    assert!(
        with["paths"]["/v1/health"].is_null(),
        "IMC's routes stay out"
    );
    let both = document_for(true, true);
    assert!(both["paths"]["/v1/health"].is_object());
    assert!(both["paths"]["/api/runs/"].is_object());
    assert!(document_for(false, false)["paths"]["/api/runs/"].is_null());
}
