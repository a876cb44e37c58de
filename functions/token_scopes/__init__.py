"""The Cognito pre token generation trigger of the users API (handler.py, deployed inline)."""
