//! The declared types of a step, as the WIT passes them (`connector::Step` builds them).

use crate::bindings::exports::corral::integration::connector::{EntityType, RelationshipType};
use crate::entity::relationship_type;

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
