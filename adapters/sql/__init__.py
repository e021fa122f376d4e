"""SQL both backends share, written once with ``%s`` placeholders."""
