"""The deletion queue: objects and prefixes to delete, written with the change letting go."""
