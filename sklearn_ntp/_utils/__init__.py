"""Array API helpers and thread limits shared by every layer."""
