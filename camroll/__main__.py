from camroll.cli import app

app()
