"""Drug traceability: GS1 identifiers and EPCIS 2.0 events for serialized medicines."""
