# The one stage; the server is in deploy.rb.
