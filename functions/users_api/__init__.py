"""The users API Lambda function: FastAPI served through Mangum."""
