"""Model sessions shared by every stage that runs a model: analysis, the geocoder, search by
description, restyling. Below them all: it imports nothing of camroll but its settings."""
