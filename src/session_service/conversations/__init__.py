"""Conversation history bound to a session: conversations and their messages."""
