"""Object storage behind one small interface, with S3 and local-directory backends."""
