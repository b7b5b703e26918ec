"""The mesh certificate authority (issue: mesh identity)."""
