//! Builders for the manifest a connector declares: config fields, steps, declared types.

use crate::bindings::exports::corral::integration::connector::{
    ConfigField, EntityType, RelationshipType, Step,
};
use crate::entity::relationship_type;

/// A config field; `default` only applies to non-secret fields.
pub fn field(
    name: &str,
    secret: bool,
    optional: bool,
    description: &str,
    default: Option<&str>,
) -> ConfigField {
    ConfigField {
        name: name.into(),
        secret,
        optional,
        description: description.into(),
        default_value: default.map(String::from),
    }
}

/// A declared entity type: the docs' resource name, `_type` and `_class`.
pub fn entity(resource: &str, type_name: &str, class: &str) -> EntityType {
    EntityType {
        resource_name: resource.into(),
        type_name: type_name.into(),
        class_name: class.into(),
    }
}

/// A declared direct relationship, its `_type` by JupiterOne's formula.
pub fn relationship(class: &str, source: &str, target: &str) -> RelationshipType {
    RelationshipType {
        type_name: relationship_type(class, source, target),
        class_name: class.into(),
        source_type: source.into(),
        target_type: target.into(),
        mapped: false,
    }
}

/// A declared mapped relationship (to entities another integration owns).
pub fn mapped(type_name: &str, class: &str, source: &str, target: &str) -> RelationshipType {
    RelationshipType {
        type_name: type_name.into(),
        class_name: class.into(),
        source_type: source.into(),
        target_type: target.into(),
        mapped: true,
    }
}

pub fn step(
    id: &str,
    name: &str,
    entities: Vec<EntityType>,
    relationships: Vec<RelationshipType>,
    depends_on: &[&str],
) -> Step {
    Step {
        id: id.into(),
        name: name.into(),
        entities,
        relationships,
        depends_on: depends_on.iter().map(|d| d.to_string()).collect(),
    }
}
