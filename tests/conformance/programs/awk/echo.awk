{ print; exit }
