"""ovs:// URIs: parse (pure), select frames (pure), rewrite chat requests for a model."""
